"""Ecosystems, partners, people and clients: the logic behind the admin API and seeding.

Every function takes the :class:`~identity.store.transaction.Tx` of the caller's transaction and
emits its audit (and registration) events into it.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from contracts.claims import Role
from contracts.errors import ErrorCode
from contracts.v1.identity import PartnerData, PartnerRegistered, PersonData, PersonRegistered
from identity.domain import keys, revocation, sessions
from identity.domain.alliance_rules import keep_alliance_rules
from identity.domain.crypto import Sealer, digest, new_secret
from identity.domain.tokens import KNOWN_SCOPES
from identity.store import repository as repo
from identity.store.models import Client, Ecosystem, Invitation, Partner, Person
from identity.store.transaction import Tx
from mesh.errors import MeshError, conflict, not_found

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
POLICIES = ("open", "invite", "claims")
GRANTS = (
    "authorization_code",
    "refresh_token",
    "client_credentials",
    "urn:ietf:params:oauth:grant-type:token-exchange",
    "urn:ietf:params:oauth:grant-type:device_code",
)
AUTH_METHODS = (
    "client_secret_basic",
    "client_secret_post",
    "client_secret_jwt",
    "private_key_jwt",
    "none",
)
APPLICATION_TYPES = ("web", "native")
SECRET_METHODS = ("client_secret_basic", "client_secret_post", "client_secret_jwt")


def secret_context(eco: str, client_id: str) -> bytes:
    """The AES-GCM associated data of a client's sealed secret (client_secret_jwt): it
    opens for that client only."""
    return f"client-secret:{eco}:{client_id}".encode()


def _now() -> datetime:
    return datetime.now(UTC)


def _invalid(field: str, msg: str) -> MeshError:
    return MeshError(
        ErrorCode.VALIDATION_FAILED, msg, [{"loc": [field], "msg": msg, "type": "value"}]
    )


invalid_field = _invalid


def check_slug(field: str, value: str) -> str:
    if not SLUG.match(value or ""):
        raise _invalid(field, f"{field} must be lowercase letters, digits and dashes")
    return value


def check_username(username: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9._@-]{1,120}", username or ""):
        raise _invalid("username", "username must be 1-120 letters, digits or ._@-")
    return username


def _roles(roles: list[str]) -> list[str]:
    valid = {r.value for r in Role}
    bad = [r for r in roles if r not in valid]
    if bad:
        raise _invalid("roles", f"unknown roles: {bad}")
    return sorted(set(roles))


def ecosystem(tx: Tx, slug: str) -> Ecosystem:
    eco = repo.get_ecosystem(tx.s, slug)
    if eco is None:
        raise not_found("ecosystem")
    return eco


def create_ecosystem(
    tx: Tx, slug: str, name: str, sealer: Sealer, actor: str | None = None, policy: str = "invite"
) -> Ecosystem:
    check_slug("slug", slug)
    if repo.get_ecosystem(tx.s, slug):
        raise conflict(f"ecosystem {slug} exists")
    if policy not in POLICIES:
        raise _invalid("membership_policy", f"policy must be one of {POLICIES}")
    eco = Ecosystem(
        slug=slug,
        name=name,
        membership_policy=policy,
        admission_rule={},
        exchange_rules=[],
        access_token_alg=keys.ACCESS_TOKEN_ALG,
        created_at=_now(),
    )
    repo.add(tx.s, eco)
    keys.ensure_keys(tx, slug, sealer)
    tx.audit(slug, "admin.ecosystem.created", actor=actor, target=slug)
    return eco


def create_partner(
    tx: Tx, eco: str, slug: str, name: str, verified: bool = False, actor: str | None = None
) -> Partner:
    ecosystem(tx, eco)
    check_slug("slug", slug)
    if repo.get_partner(tx.s, eco, slug):
        raise conflict(f"partner {slug} exists")
    partner = Partner(eco=eco, slug=slug, name=name, verified=verified, created_at=_now())
    repo.add(tx.s, partner)
    tx.emit(
        PartnerRegistered(
            ecosystem=eco,
            partner=slug,
            subject=slug,
            data=PartnerData(partner=slug, name=name, verified=verified),
        )
    )
    tx.audit(eco, "admin.partner.created", actor=actor, target=slug, partner=slug)
    return partner


def verify_partner(tx: Tx, eco: str, slug: str, verified: bool, actor: str | None) -> Partner:
    partner = repo.get_partner(tx.s, eco, slug)
    if partner is None:
        raise not_found("partner")
    partner.verified = verified
    tx.s.flush()
    tx.audit(
        eco, "admin.partner.verified", actor=actor, target=slug, partner=slug, verified=verified
    )
    return partner


def create_person(
    tx: Tx,
    eco: str,
    username: str,
    partner: str,
    name: str,
    roles: list[str],
    password_hash: str | None,
    email: str | None = None,
    actor: str | None = None,
    upstream: str | None = None,
) -> Person:
    ecosystem(tx, eco)
    check_username(username)
    if repo.get_partner(tx.s, eco, partner) is None:
        raise not_found("partner")
    if repo.person_by_username(tx.s, eco, username):
        raise conflict(f"username {username} is taken")
    person = Person(
        id=uuid.uuid4().hex,
        eco=eco,
        username=username,
        partner=partner,
        name=name,
        email=email,
        roles=_roles(roles or [Role.MEMBER.value]),
        password_hash=password_hash,
        active=True,
        upstream=upstream,
        created_at=_now(),
    )
    repo.add(tx.s, person)
    tx.emit(
        PersonRegistered(
            ecosystem=eco,
            partner=partner,
            subject=person.id,
            data=PersonData(
                person=person.id,
                partner=partner,
                name=name,
                username=username,
                email=email,
                roles=person.roles,
            ),
        )
    )
    tx.audit(eco, "admin.person.created", actor=actor, target=person.id, partner=partner)
    return person


def update_membership(
    tx: Tx,
    eco: str,
    person_id: str,
    roles: list[str] | None,
    active: bool | None,
    actor: str | None,
) -> Person:
    person = repo.get_person(tx.s, person_id)
    if person is None or person.eco != eco:
        raise not_found("person")
    if roles is not None:
        person.roles = _roles(roles)
    if active is not None:
        person.active = active
        if not active:
            revocation.revoke_person(tx, eco, person.id)
            sessions.end_person_sessions(tx, eco, person.id, "person_disabled")
    tx.s.flush()
    tx.audit(
        eco,
        "admin.membership.updated",
        actor=actor,
        target=person.id,
        partner=person.partner,
        roles=person.roles,
        active=person.active,
    )
    return person


def create_client(
    tx: Tx,
    eco: str,
    client_id: str,
    name: str,
    *,
    partner: str | None,
    auth_method: str,
    grant_types: list[str],
    scopes: list[str],
    redirect_uris: list[str] | None = None,
    roles: list[str] | None = None,
    first_party: bool = False,
    jwks: dict[str, Any] | None = None,
    post_logout_redirect_uris: list[str] | None = None,
    id_token_alg: str = keys.ALG,
    dpop_bound_access_tokens: bool = False,
    application_type: str = "web",
    require_pushed_authorization_requests: bool = False,
    sealer: Sealer | None = None,
    backchannel_logout_uri: str | None = None,
    backchannel_logout_session_required: bool = False,
    actor: str | None = None,
) -> tuple[Client, str | None]:
    """Register a client; returns it and its secret (shown once, stored as a hash, and
    for client_secret_jwt, which verifies with the secret itself, sealed by ``sealer``)."""
    ecosystem(tx, eco)
    if not re.match(r"^[A-Za-z0-9._-]{1,120}$", client_id or ""):
        raise _invalid("client_id", "client_id must be 1-120 letters, digits or ._-")
    if repo.get_client(tx.s, eco, client_id):
        raise conflict(f"client {client_id} exists")
    if auth_method not in AUTH_METHODS:
        raise _invalid("auth_method", f"auth_method must be one of {AUTH_METHODS}")
    if set(grant_types) - set(GRANTS):
        raise _invalid("grant_types", f"grant types must be among {GRANTS}")
    if set(scopes) - KNOWN_SCOPES:
        raise _invalid("scopes", f"unknown scopes: {sorted(set(scopes) - KNOWN_SCOPES)}")
    if partner and repo.get_partner(tx.s, eco, partner) is None:
        raise not_found("partner")
    if auth_method == "none" and set(grant_types) & {"client_credentials", GRANTS[3]}:
        raise _invalid("grant_types", "public clients cannot use client credentials or exchange")
    if id_token_alg not in keys.ALGS:
        raise _invalid("id_token_alg", f"id_token_alg must be one of {keys.ALGS}")
    if auth_method == "private_key_jwt" and not (jwks or {}).get("keys"):
        raise _invalid("jwks", "private_key_jwt needs the client's public keys (jwks)")
    if backchannel_logout_uri is not None:
        check_backchannel_uri(backchannel_logout_uri)
    if application_type not in APPLICATION_TYPES:
        raise _invalid("application_type", f"application_type must be one of {APPLICATION_TYPES}")
    if application_type == "native" and auth_method != "none":
        # RFC 8252 §8.5: a secret shipped inside an app is no secret
        raise _invalid("auth_method", "native apps are public clients (auth_method none)")
    secret = new_secret(32) if auth_method in SECRET_METHODS else None
    sealed = None
    if auth_method == "client_secret_jwt":
        if sealer is None:
            raise ValueError("client_secret_jwt clients need a sealer for their secret")
        sealed = sealer.seal(str(secret).encode(), secret_context(eco, client_id))
    client = Client(
        eco=eco,
        client_id=client_id,
        name=name,
        partner=partner,
        auth_method=auth_method,
        secret_hash=digest(secret) if secret else None,
        jwks=jwks or {},
        redirect_uris=list(redirect_uris or []),
        post_logout_redirect_uris=list(post_logout_redirect_uris or []),
        grant_types=list(grant_types),
        scopes=sorted(set(scopes)),
        roles=_roles(roles or []),
        first_party=first_party,
        id_token_alg=id_token_alg,
        dpop_bound_access_tokens=dpop_bound_access_tokens,
        application_type=application_type,
        require_pushed_authorization_requests=require_pushed_authorization_requests,
        secret_enc=sealed,
        backchannel_logout_uri=backchannel_logout_uri,
        backchannel_logout_session_required=backchannel_logout_session_required,
        created_at=_now(),
    )
    repo.add(tx.s, client)
    tx.audit(eco, "admin.client.created", actor=actor, target=client_id, partner=partner)
    return client, secret


def check_backchannel_uri(uri: str) -> str:
    """An absolute http(s) URI without fragment (Back-Channel Logout 1.0 §2.2); where it
    may point is the egress guard's to say when logout tokens are sent."""
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.fragment:
        raise _invalid("backchannel_logout_uri", "an absolute http(s) URI without fragment")
    if parts.username or parts.password:
        raise _invalid("backchannel_logout_uri", "no credentials in the URI")
    return uri


def set_policy(
    tx: Tx,
    eco: str,
    policy: str,
    rule: dict[str, Any] | None,
    default_partner: str | None,
    actor: str | None,
) -> Ecosystem:
    row = ecosystem(tx, eco)
    if policy not in POLICIES:
        raise _invalid("membership_policy", f"policy must be one of {POLICIES}")
    if policy == "claims" and not (rule and rule.get("claim") and isinstance(rule.get("in"), list)):
        raise _invalid("admission_rule", 'claims-gated needs {"claim": ..., "in": [...]}')
    if default_partner and repo.get_partner(tx.s, eco, default_partner) is None:
        raise not_found("partner")
    row.membership_policy, row.admission_rule = policy, rule or {}
    row.default_partner = default_partner
    tx.s.flush()
    tx.audit(eco, "admin.policy.updated", actor=actor, target=eco, policy=policy)
    return row


def set_exchange_rules(tx: Tx, eco: str, rules: list[dict[str, Any]], actor: str | None) -> None:
    row = ecosystem(tx, eco)
    for rule in rules:
        if not isinstance(rule.get("client"), str):
            raise _invalid("rules", "each rule names the exchanging client")
    row.exchange_rules = keep_alliance_rules(row.exchange_rules or [], rules)
    tx.s.flush()
    tx.audit(eco, "admin.exchange_rules.updated", actor=actor, target=eco, rules=len(rules))


def invite(
    tx: Tx,
    eco: str,
    partner: str,
    roles: list[str],
    email: str | None,
    actor: str | None,
    ttl_s: int = 7 * 24 * 3600,
) -> str:
    ecosystem(tx, eco)
    if repo.get_partner(tx.s, eco, partner) is None:
        raise not_found("partner")
    code = new_secret(24)
    repo.add(
        tx.s,
        Invitation(
            code_hash=digest(code),
            eco=eco,
            partner=partner,
            roles=_roles(roles or ["member"]),
            email=email,
            expires_at=_now() + timedelta(seconds=ttl_s),
        ),
    )
    tx.audit(eco, "admin.invitation.created", actor=actor, target=partner, partner=partner)
    return code


def admits(rule: dict[str, Any], claims: dict[str, Any]) -> bool:
    """Claims-gated admission: ``{"claim": "loyalty_tier", "in": ["gold", "platinum"]}``."""
    value = claims.get(str(rule.get("claim", "")))
    allowed = rule.get("in") or []
    if isinstance(value, list):
        return any(v in allowed for v in value)
    return value is not None and value in allowed


PLAIN_SETTINGS = ("name", "access_ttl", "refresh_ttl", "access_token_alg")


def update_ecosystem(tx: Tx, eco: str, changes: dict[str, Any], actor: str | None) -> Ecosystem:
    """Name, token lifetimes (access, refresh), access-token algorithm of the ecosystem,
    and whether its authorization requests must be pushed (RFC 9126)."""
    row = ecosystem(tx, eco)
    alg = changes.get("access_token_alg")
    if alg is not None and alg not in keys.ALGS:
        raise _invalid("access_token_alg", f"access_token_alg must be one of {keys.ALGS}")
    for key in (*PLAIN_SETTINGS, "require_pushed_authorization_requests"):
        if key in changes:
            setattr(row, key, changes[key])
    tx.s.flush()
    tx.audit(eco, "admin.ecosystem.updated", actor=actor, target=eco, **changes)
    return row
