"""The client-credentials grant's decision, defined once.

Whatever a client-credentials token depends on besides the client's authentication is
decided here, by :func:`decide`, from the ecosystem's and the client's rows and the
requested scope: the ecosystem still serves, the client may use the grant, the scope it
gets (the provider knows every scope asked for; the client may ask for it; its roles
allow it), whether it must prove a DPoP key, the token's subject, lifetime and signing
algorithm. Client authentication is :func:`auth_method_allowed` (the client's registered
method, no other) and :func:`secret_accepted` (``client_secret_basic`` and
``client_secret_post``), which authlib calls through :class:`identity.oauth.adapter.ClientView`.

Both ways of issuing the token call these: the full path's authlib grant
(:class:`identity.oauth.grants.ClientCredentialsGrant`) and the lean path
(:func:`identity.lean.shortcut.issue`), which declines whatever they refuse and lets the
full path answer the error. A check added here applies to both.
"""

from __future__ import annotations

from typing import NamedTuple

from authlib.oauth2.rfc6749 import InvalidScopeError, UnauthorizedClientError

from identity.domain.crypto import same
from identity.domain.keys import access_token_alg
from identity.domain.tokens import KNOWN_SCOPES, Subject, UnknownScope, grant_scope
from identity.store.models import Client, Ecosystem
from mesh.errors import not_found

GRANT = "client_credentials"
# Client authentication methods whose credential is the client's secret.
SECRET_METHODS = frozenset({"client_secret_basic", "client_secret_post"})


class Decision(NamedTuple):
    """What a client-credentials token is issued from (besides the signing key)."""

    subject: Subject
    scope: str
    ttl: int
    alg: str


def client_subject_of(row: Client) -> Subject:
    """A back-end client acting for its own partner."""
    return Subject(sub=row.client_id, partner=row.partner, roles=tuple(row.roles), is_person=False)


def auth_method_allowed(row: Client, method: str) -> bool:
    """May ``row`` authenticate with ``method``? Only with the one it is registered for
    (its ``token_endpoint_auth_method``), at every endpoint that authenticates clients."""
    return method == row.auth_method


def secret_accepted(row: Client, secret_digest: str) -> bool:
    """Does the digest of the presented secret match the client's stored hash?"""
    stored = row.secret_hash
    return bool(stored) and same(secret_digest, stored or "")


def decide(eco: Ecosystem, row: Client, requested: str | None, proof: bool = False) -> Decision:
    """The grant's checks, in the order the full path reports their errors.

    ``proof``: the request carries a valid DPoP proof. A pure function of its arguments
    (no database, no clock): a caller may remember its answer for a pair of rows.
    Raises :class:`mesh.errors.MeshError` (404, a disabled ecosystem) or authlib's
    ``OAuth2Error`` (``unauthorized_client``, ``invalid_scope``, ``invalid_dpop_proof``).
    """
    if eco.disabled_at is not None:  # a disabled ecosystem's issuer is gone
        raise not_found("ecosystem")
    if GRANT not in row.grant_types:
        raise UnauthorizedClientError(f"The client is not authorized to use 'grant_type={GRANT}'")
    subject = client_subject_of(row)
    scope = scope_of(requested, row, subject)
    if row.dpop_bound_access_tokens and not proof:
        from identity.oauth.dpop import InvalidDPoPProofError  # dpop imports the authlib side

        raise InvalidDPoPProofError("this client must send a DPoP proof with token requests")
    return Decision(subject, scope, row.access_ttl or eco.access_ttl, access_token_alg(eco))


def scope_of(requested: str | None, row: Client, subject: Subject) -> str:
    """The scope granted for ``requested``: ``invalid_scope`` for a scope the provider does
    not know; else what the client may ask for and its roles allow."""
    wanted = (requested or "").split()
    if not KNOWN_SCOPES.issuperset(wanted):
        raise InvalidScopeError()
    try:
        return grant_scope(requested, row.scopes, subject.roles)
    except UnknownScope as exc:  # a scope the client holds that the provider no longer knows
        raise InvalidScopeError(f"unknown scope: {exc}") from None
