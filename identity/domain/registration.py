"""Dynamic Client Registration (RFC 7591) and its management protocol (RFC 7592).

Registration is open only to holders of an initial access token, which a partner's
admin (or an operator) issues for one partner with limits: how many clients, which
scopes, which grant types, which redirect hosts. A client registered with it belongs
to that partner (its tokens carry the partner). The client gets a registration access
token (stored as a hash) to read, update and delete itself at its registration URI.
"""

from __future__ import annotations

import ipaddress
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from contracts.claims import Role, Scope
from identity.domain import directory, keys
from identity.domain.crypto import digest, new_secret
from identity.domain.tokens import KNOWN_SCOPES
from identity.store import repository as repo
from identity.store.models import Client, InitialAccessToken
from identity.store.transaction import Tx
from mesh.errors import MeshError, not_found

DEVICE = "urn:ietf:params:oauth:grant-type:device_code"
# What an initial access token may let clients have: never operator or broker powers,
# never token exchange (its rules are the ecosystem operators').
REGISTRABLE_GRANTS = ("authorization_code", "refresh_token", "client_credentials", DEVICE)
REGISTRABLE_SCOPES = frozenset(KNOWN_SCOPES) - {Scope.ADMIN.value, Scope.BROKER_CURATE.value}
AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt", "none")
MAX_CLIENTS = 1000


class RegistrationError(Exception):
    """An RFC 7591 §3.2.2 error: ``invalid_redirect_uri`` or ``invalid_client_metadata``."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


class TokenRefused(Exception):
    """No, an unknown, expired or revoked token (401), or one at its limit (403)."""

    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _invalid(field: str, msg: str) -> MeshError:
    return directory.invalid_field(field, msg)


# --- initial access tokens (the partner admin's side) ------------------------------------


@dataclass(frozen=True)
class Limits:
    max_clients: int
    scopes: list[str]
    grant_types: list[str]
    redirect_hosts: list[str]
    ttl_s: int


def issue_initial_token(
    tx: Tx, eco: str, partner: str, limits: Limits, actor: str, max_ttl_s: int
) -> tuple[InitialAccessToken, str]:
    """A new initial access token for ``partner`` (the secret is shown once)."""
    if repo.get_partner(tx.s, eco, partner) is None:
        raise not_found("partner")
    if not 1 <= limits.max_clients <= MAX_CLIENTS:
        raise _invalid("max_clients", f"max_clients must be 1-{MAX_CLIENTS}")
    if not 60 <= limits.ttl_s <= max_ttl_s:
        raise _invalid("ttl_s", f"ttl_s must be 60-{max_ttl_s}")
    if set(limits.scopes) - REGISTRABLE_SCOPES:
        bad = sorted(set(limits.scopes) - REGISTRABLE_SCOPES)
        raise _invalid("scopes", f"not for registered clients: {bad}")
    if not limits.grant_types or set(limits.grant_types) - set(REGISTRABLE_GRANTS):
        raise _invalid("grant_types", f"grant types must be among {REGISTRABLE_GRANTS}")
    hosts = [h.strip().lower() for h in limits.redirect_hosts]
    if any(not h or "/" in h or (":" in h and not _is_ip(h)) for h in hosts):
        raise _invalid("redirect_hosts", "host names only (no scheme, port or path)")
    secret = new_secret()
    now = _now()
    row = InitialAccessToken(
        id=uuid.uuid4().hex,
        token_hash=digest(secret),
        eco=eco,
        partner=partner,
        created_by=actor,
        max_clients=limits.max_clients,
        clients_registered=0,
        scopes=sorted(set(limits.scopes)),
        grant_types=sorted(set(limits.grant_types)),
        redirect_hosts=sorted(set(hosts)),
        expires_at=now + timedelta(seconds=limits.ttl_s),
        revoked=False,
        created_at=now,
    )
    repo.add(tx.s, row)
    tx.audit(eco, "admin.initial_access_token.issued", actor=actor, target=row.id, partner=partner)
    return row, secret


def revoke_initial_token(tx: Tx, eco: str, token_id: str, partner: str | None, actor: str) -> None:
    row = repo.get_initial_token(tx.s, eco, token_id)
    if row is None or (partner is not None and row.partner != partner):
        raise not_found("initial access token")
    row.revoked = True
    tx.s.flush()
    tx.audit(eco, "admin.initial_access_token.revoked", actor=actor, target=row.id)


def view_initial_token(row: InitialAccessToken) -> dict[str, Any]:
    return {
        "id": row.id,
        "partner": row.partner,
        "max_clients": row.max_clients,
        "clients_registered": row.clients_registered,
        "scopes": row.scopes,
        "grant_types": row.grant_types,
        "redirect_hosts": row.redirect_hosts,
        "expires_at": _aware(row.expires_at).isoformat().replace("+00:00", "Z"),
        "revoked": row.revoked,
        "created_by": row.created_by,
    }


# --- registration (RFC 7591) -------------------------------------------------------------


def _usable(tx: Tx, eco: str, secret: str | None) -> InitialAccessToken:
    row = repo.initial_token_by_hash(tx.s, digest(secret)) if secret else None
    if row is None or row.eco != eco or row.revoked or _aware(row.expires_at) <= _now():
        raise TokenRefused(401, "a valid initial access token is needed")
    return row


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _loopback(host: str) -> bool:
    return host == "localhost" or (_is_ip(host) and ipaddress.ip_address(host).is_loopback)


def _redirect_uris(uris: Any, allowed_hosts: list[str], needed: bool) -> list[str]:
    if uris is None:
        uris = []
    if not isinstance(uris, list) or not all(isinstance(u, str) for u in uris) or len(uris) > 20:
        raise RegistrationError("invalid_redirect_uri", "redirect_uris must be a list of URIs")
    if needed and not uris:
        raise RegistrationError("invalid_redirect_uri", "authorization_code needs redirect_uris")
    for uri in uris:
        parts = urlsplit(uri)
        host = (parts.hostname or "").lower()
        if parts.scheme not in ("https", "http") or not host or parts.fragment:
            raise RegistrationError("invalid_redirect_uri", f"not an absolute URI: {uri}")
        if parts.scheme == "http" and not _loopback(host):
            raise RegistrationError("invalid_redirect_uri", f"https needed: {uri}")
        if host not in allowed_hosts:
            raise RegistrationError("invalid_redirect_uri", f"host not allowed: {host}")
    return list(uris)


def _metadata(body: dict[str, Any], limits: InitialAccessToken) -> dict[str, Any]:
    """The client fields of RFC 7591 metadata, within the initial access token's limits."""

    def bad(msg: str) -> RegistrationError:
        return RegistrationError("invalid_client_metadata", msg)

    grants = body.get("grant_types", ["authorization_code"])
    if not isinstance(grants, list) or not grants or not all(isinstance(g, str) for g in grants):
        raise bad("grant_types must be a list of grant types")
    if set(grants) - set(limits.grant_types):
        beyond = sorted(set(grants) - set(limits.grant_types))
        raise bad(f"grant types beyond this registration's: {beyond}")
    response_types = body.get("response_types", ["code"] if "authorization_code" in grants else [])
    if response_types not in ([], ["code"]) or (response_types == ["code"]) != (
        "authorization_code" in grants
    ):
        raise bad('response_types must be ["code"] with authorization_code, else []')
    scope = body.get("scope", " ".join(limits.scopes))
    if not isinstance(scope, str):
        raise bad("scope must be a string")
    if set(scope.split()) - set(limits.scopes):
        beyond = sorted(set(scope.split()) - set(limits.scopes))
        raise bad(f"scopes beyond this registration's: {beyond}")
    method = body.get("token_endpoint_auth_method", "client_secret_basic")
    if method not in AUTH_METHODS:
        raise bad(f"token_endpoint_auth_method must be one of {', '.join(AUTH_METHODS)}")
    alg = body.get("id_token_signed_response_alg", keys.ALG)
    if alg not in keys.ALGS:
        raise bad(f"id_token_signed_response_alg must be one of {keys.ALGS}")
    name = body.get("client_name", "")
    if not isinstance(name, str) or len(name) > 200:
        raise bad("client_name must be a string of at most 200 characters")
    hosts = limits.redirect_hosts
    redirects = _redirect_uris(body.get("redirect_uris"), hosts, "authorization_code" in grants)
    post_logout = _redirect_uris(body.get("post_logout_redirect_uris"), hosts, False)
    backchannel = body.get("backchannel_logout_uri")
    if backchannel is not None and not isinstance(backchannel, str):
        raise bad("backchannel_logout_uri must be a URI")
    return {
        "name": name or "dynamically registered client",
        "auth_method": method,
        "grant_types": sorted(set(grants)),
        "scopes": sorted(set(scope.split())),
        "redirect_uris": redirects,
        "post_logout_redirect_uris": post_logout,
        "id_token_alg": alg,
        "jwks": body.get("jwks") if isinstance(body.get("jwks"), dict) else None,
        "dpop_bound_access_tokens": body.get("dpop_bound_access_tokens") is True,
        "backchannel_logout_uri": backchannel,
        "backchannel_logout_session_required": body.get("backchannel_logout_session_required")
        is True,
    }


def register(
    tx: Tx, eco: str, iat: str | None, body: dict[str, Any]
) -> tuple[Client, str | None, str]:
    """A new client of the initial access token's partner; returns it, its secret and its
    registration access token."""
    limits = _usable(tx, eco, iat)
    if limits.clients_registered >= limits.max_clients:
        raise TokenRefused(403, f"this initial access token registered its {limits.max_clients}")
    fields = _metadata(body, limits)
    client_id = "dyn-" + new_secret(12)
    try:
        client, secret = directory.create_client(
            tx,
            eco,
            client_id,
            partner=limits.partner,
            roles=[Role.MEMBER.value],
            actor=f"registration:{limits.id}",
            **fields,
        )
    except MeshError as exc:
        raise RegistrationError("invalid_client_metadata", exc.detail) from None
    registration_token = new_secret()
    client.registered_via = limits.id
    client.registration_token_hash = digest(registration_token)
    limits.clients_registered += 1
    tx.s.flush()
    return client, secret, registration_token


# --- management (RFC 7592) ---------------------------------------------------------------


def managed(tx: Tx, eco: str, client_id: str, token: str | None) -> Client:
    """The client a registration access token manages (401 for anything else)."""
    client = repo.get_client(tx.s, eco, client_id)
    if (
        client is None
        or not token
        or client.registration_token_hash is None
        or client.registration_token_hash != digest(token)
    ):
        raise TokenRefused(401, "a valid registration access token of this client is needed")
    return client


def update(tx: Tx, eco: str, client_id: str, token: str | None, body: dict[str, Any]) -> Client:
    """RFC 7592 §2.2: the client's metadata replaced, within its registration's limits."""
    client = managed(tx, eco, client_id, token)
    if body.get("client_id") != client_id:
        raise RegistrationError("invalid_client_metadata", "client_id must be the client's")
    limits = repo.get_initial_token(tx.s, eco, client.registered_via or "")
    if limits is None:
        raise TokenRefused(401, "this client's registration is gone")
    fields = _metadata(body, limits)
    if fields["auth_method"] != client.auth_method:
        raise RegistrationError(
            "invalid_client_metadata", "token_endpoint_auth_method cannot change"
        )
    if fields["backchannel_logout_uri"] is not None:
        try:
            directory.check_backchannel_uri(fields["backchannel_logout_uri"])
        except MeshError as exc:
            raise RegistrationError("invalid_client_metadata", exc.detail) from None
    for key, value in fields.items():
        if key in ("auth_method",):
            continue
        setattr(client, key, value if value is not None or key != "jwks" else {})
    tx.s.flush()
    tx.audit(eco, "registration.client.updated", actor=client_id, target=client_id)
    return client


def delete(tx: Tx, eco: str, client_id: str, token: str | None) -> None:
    """RFC 7592 §2.3: the client is gone, its refresh tokens with it."""
    client = managed(tx, eco, client_id, token)
    limits = repo.get_initial_token(tx.s, eco, client.registered_via or "")
    if limits is not None and limits.clients_registered > 0:
        limits.clients_registered -= 1
    repo.revoke_client_refresh(tx.s, eco, client_id)
    repo.remove(tx.s, client)
    tx.audit(eco, "registration.client.deleted", actor=client_id, target=client_id)


def view(client: Client, issuer: str) -> dict[str, Any]:
    """A client's metadata as RFC 7591 §3.2.1 answers it."""
    doc: dict[str, Any] = {
        "client_id": client.client_id,
        "client_id_issued_at": int(_aware(client.created_at).timestamp()),
        "client_name": client.name,
        "token_endpoint_auth_method": client.auth_method,
        "grant_types": client.grant_types,
        "response_types": ["code"] if "authorization_code" in client.grant_types else [],
        "scope": " ".join(client.scopes),
        "redirect_uris": client.redirect_uris,
        "post_logout_redirect_uris": client.post_logout_redirect_uris,
        "id_token_signed_response_alg": client.id_token_alg,
        "dpop_bound_access_tokens": client.dpop_bound_access_tokens,
        "partner": client.partner,
        "registration_client_uri": f"{issuer}/register/{client.client_id}",
    }
    if client.backchannel_logout_uri:
        doc["backchannel_logout_uri"] = client.backchannel_logout_uri
        doc["backchannel_logout_session_required"] = client.backchannel_logout_session_required
    if client.jwks:
        doc["jwks"] = client.jwks
    return doc
