"""Tables of the identity provider (its own database).

Secrets never sit here in the clear: passwords are argon2id hashes, client
secrets, refresh tokens, codes and sessions are SHA-256 hashes of high-entropy
random values, private signing keys and authenticator-app keys are encrypted (AES-GCM)
at rest, and recovery codes are keyed hashes.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from mesh.migrate import History


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[str]: JSON, datetime: DateTime(timezone=True)}


metadata = Base.metadata


class Ecosystem(Base):
    __tablename__ = "id_ecosystems"
    slug: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # open | invite | claims
    membership_policy: Mapped[str] = mapped_column(String(16), default="invite")
    # claims-gated admission: {"claim": "loyalty_tier", "in": ["gold", "platinum"]}
    admission_rule: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # partner that self-registered people join (open / claims-gated policies)
    default_partner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    access_ttl: Mapped[int] = mapped_column(Integer, default=900)
    # JWS algorithm of access tokens: ES256 (default: a P-256 signature costs a tenth of an
    # RSA-2048 one) or RS256 (RFC 9068's mandatory-to-implement algorithm, always published).
    # Nullable so that start-up can add it to an older database; NULL means the default.
    access_token_alg: Mapped[str | None] = mapped_column(String(16), nullable=True, default="ES256")
    refresh_ttl: Mapped[int] = mapped_column(Integer, default=30 * 24 * 3600)
    # RFC 8693 rules: [{"actor_client": "...", "subject_client": "*", "scopes": [...]}]
    exchange_rules: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime]
    # set while the ecosystem is disabled: its issuer answers 404 to everything
    disabled_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # RFC 9126 §5: every authorization request of this ecosystem must be pushed first
    require_pushed_authorization_requests: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )
    # second factor at sign-in: optional | required | passkeys_only (identity/domain/factors.py)
    second_factor: Mapped[str] = mapped_column(
        String(16), default="optional", server_default="optional"
    )


class Partner(Base):
    __tablename__ = "id_partners"
    eco: Mapped[str] = mapped_column(String(64), primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    verified: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]
    # a second-factor policy stricter than the ecosystem's; NULL: the ecosystem's
    second_factor: Mapped[str | None] = mapped_column(String(16), nullable=True)
    __table_args__ = (ForeignKeyConstraint(["eco"], ["id_ecosystems.slug"]),)


class Person(Base):
    __tablename__ = "id_people"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # the subject (sub)
    eco: Mapped[str] = mapped_column(String(64), index=True)
    username: Mapped[str] = mapped_column(String(120))
    partner: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    roles: Mapped[list[str]] = mapped_column(default=list)
    password_hash: Mapped[str | None] = mapped_column(String(200), nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # set for people who arrived through a brokered upstream provider
    upstream: Mapped[str | None] = mapped_column(String(300), nullable=True)
    created_at: Mapped[datetime]
    # SCIM (RFC 7643): the directory's own id, name parts, last change; the roles held
    # only through the partner's group rules; removed: deleted by SCIM, kept deactivated
    external_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    given_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    family_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    updated_at: Mapped[datetime | None] = mapped_column(nullable=True)
    group_roles: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")
    removed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    __table_args__ = (
        ForeignKeyConstraint(["eco", "partner"], ["id_partners.eco", "id_partners.slug"]),
    )


class Client(Base):
    __tablename__ = "id_clients"
    eco: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(120), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    partner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # client_secret_basic | client_secret_post | private_key_jwt | none (public)
    auth_method: Mapped[str] = mapped_column(String(32))
    secret_hash: Mapped[str | None] = mapped_column(String(128), nullable=True)
    jwks: Mapped[dict[str, Any]] = mapped_column(default=dict)
    redirect_uris: Mapped[list[str]] = mapped_column(default=list)
    post_logout_redirect_uris: Mapped[list[str]] = mapped_column(default=list)
    grant_types: Mapped[list[str]] = mapped_column(default=list)
    scopes: Mapped[list[str]] = mapped_column(default=list)
    # roles of the client's own tokens (client credentials)
    roles: Mapped[list[str]] = mapped_column(default=list)
    first_party: Mapped[bool] = mapped_column(Boolean, default=False)
    # RS256 (always available) or ES256 for clients that accept it
    id_token_alg: Mapped[str] = mapped_column(String(16), default="RS256")
    access_ttl: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # RFC 9449 §5.2: every token request of this client must carry a DPoP proof
    dpop_bound_access_tokens: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )
    # web | native (OpenID Connect Dynamic Client Registration §2): a native app's loopback
    # redirect may name any port (RFC 8252 §7.3, identity/oauth/redirects.py)
    application_type: Mapped[str] = mapped_column(String(8), default="web", server_default="web")
    # RFC 9126 §6: this client's authorization requests must be pushed first
    require_pushed_authorization_requests: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )
    # client_secret_jwt (RFC 7523 §2.2, HS256) verifies with the secret itself: sealed
    # (AES-GCM, as private signing keys); NULL for every other method
    secret_enc: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime]
    # OpenID Connect Back-Channel Logout 1.0: where logout tokens go, and whether they
    # must carry the session id (sid)
    backchannel_logout_uri: Mapped[str | None] = mapped_column(Text, nullable=True)
    backchannel_logout_session_required: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )
    # RFC 7591/7592: the initial access token a dynamically registered client came
    # through, and the hash of its registration access token
    registered_via: Mapped[str | None] = mapped_column(String(64), nullable=True)
    registration_token_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)


class SigningKey(Base):
    __tablename__ = "id_signing_keys"
    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    eco: Mapped[str] = mapped_column(String(64), index=True)
    alg: Mapped[str] = mapped_column(String(16))
    # next (published, not yet signing) | active (signing) | retired (published, not signing)
    state: Mapped[str] = mapped_column(String(16))
    public_jwk: Mapped[dict[str, Any]] = mapped_column()
    private_enc: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    retire_until: Mapped[datetime | None] = mapped_column(nullable=True)


class AuthCode(Base):
    __tablename__ = "id_auth_codes"
    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    eco: Mapped[str] = mapped_column(String(64))
    client_id: Mapped[str] = mapped_column(String(120))
    person_id: Mapped[str] = mapped_column(String(64))
    redirect_uri: Mapped[str] = mapped_column(Text)
    scope: Mapped[str] = mapped_column(Text)
    nonce: Mapped[str | None] = mapped_column(String(255), nullable=True)
    code_challenge: Mapped[str | None] = mapped_column(String(128), nullable=True)
    code_challenge_method: Mapped[str | None] = mapped_column(String(10), nullable=True)
    auth_time: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[datetime]
    used: Mapped[bool] = mapped_column(Boolean, default=False)
    # the refresh family issued for this code, revoked if the code is replayed
    family_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # RFC 9449 §10: the DPoP key (thumbprint) the code must be redeemed with
    dpop_jkt: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # the public id (``sid``) of the login session the code was issued in
    sid: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # the login session the code was issued in (its refresh tokens end with it)
    session_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # RFC 8176 authentication methods of that session (its ID token's amr and acr)
    amr: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)


class RefreshToken(Base):
    __tablename__ = "id_refresh_tokens"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    family_id: Mapped[str] = mapped_column(String(64), index=True)
    eco: Mapped[str] = mapped_column(String(64))
    client_id: Mapped[str] = mapped_column(String(120))
    person_id: Mapped[str] = mapped_column(String(64))
    scope: Mapped[str] = mapped_column(Text)
    auth_time: Mapped[int] = mapped_column(Integer)
    issued_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    rotated: Mapped[bool] = mapped_column(Boolean, default=False)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    # the access token issued with this refresh token, revoked with its family
    access_jti: Mapped[str | None] = mapped_column(String(64), nullable=True)
    access_expires_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # RFC 9449 §5: a public client's refresh token is bound to its DPoP key (thumbprint)
    jkt: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # the ``sid`` of the login session the family began in (its ID tokens carry it)
    sid: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # the login session this token lives with (NULL: offline_access, outlives it)
    session_hash: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    # RFC 8176 authentication methods of the sign-in the family began with
    amr: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)


class RevokedAccessToken(Base):
    __tablename__ = "id_revoked_jtis"
    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime]


class LoginSession(Base):
    __tablename__ = "id_sessions"
    sid_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    eco: Mapped[str] = mapped_column(String(64))
    person_id: Mapped[str] = mapped_column(String(64))
    auth_time: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[datetime]
    # digest of the ticket of the authorization request this sign-in was made for: that
    # request (once) counts it as the fresh login prompt=login / max_age asked for
    fresh_for: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # RFC 8176 authentication methods of the sign-in (pwd, otp, hwk, user, mfa…); NULL: unknown
    amr: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)


class SessionClient(Base):
    """A client that got tokens in a login session: told when the session ends."""

    __tablename__ = "id_session_clients"
    sid_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(120), primary_key=True)
    eco: Mapped[str] = mapped_column(String(64))
    person_id: Mapped[str] = mapped_column(String(64))


class LogoutDelivery(Base):
    """A logout token still to be delivered to a client's back-channel logout URI."""

    __tablename__ = "id_logout_deliveries"
    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    eco: Mapped[str] = mapped_column(String(64))
    client_id: Mapped[str] = mapped_column(String(120))
    person_id: Mapped[str] = mapped_column(String(64))
    sid: Mapped[str | None] = mapped_column(String(64), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(index=True)
    created_at: Mapped[datetime]
    last_error: Mapped[str | None] = mapped_column(String(300), nullable=True)


class DeviceGrant(Base):
    """RFC 8628: a device authorization request, until its device code is redeemed."""

    __tablename__ = "id_device_grants"
    device_code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_code: Mapped[str] = mapped_column(String(16), unique=True)
    eco: Mapped[str] = mapped_column(String(64))
    client_id: Mapped[str] = mapped_column(String(120))
    scope: Mapped[str] = mapped_column(Text)
    # pending | approved | denied | used
    status: Mapped[str] = mapped_column(String(16), default="pending")
    interval: Mapped[int] = mapped_column(Integer, default=5)
    last_poll_at: Mapped[datetime | None] = mapped_column(nullable=True)
    expires_at: Mapped[datetime]
    person_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    auth_time: Mapped[int | None] = mapped_column(Integer, nullable=True)
    session_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)


class InitialAccessToken(Base):
    """RFC 7591 §3: what a partner admin lets dynamic registration create for the partner."""

    __tablename__ = "id_initial_access_tokens"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    eco: Mapped[str] = mapped_column(String(64), index=True)
    partner: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(64))
    max_clients: Mapped[int] = mapped_column(Integer)
    clients_registered: Mapped[int] = mapped_column(Integer, default=0)
    scopes: Mapped[list[str]] = mapped_column(default=list)
    grant_types: Mapped[list[str]] = mapped_column(default=list)
    redirect_hosts: Mapped[list[str]] = mapped_column(default=list)
    expires_at: Mapped[datetime]
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]


class ScimToken(Base):  # a partner directory's SCIM bearer token (stored as a hash)
    __tablename__ = "id_scim_tokens"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    eco: Mapped[str] = mapped_column(String(64), index=True)
    partner: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime | None] = mapped_column(nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(nullable=True)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class ScimGroup(Base):  # a group of a partner's directory; rules map it to roles
    __tablename__ = "id_scim_groups"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    eco: Mapped[str] = mapped_column(String(64))
    partner: Mapped[str] = mapped_column(String(64))
    display_name: Mapped[str] = mapped_column(String(200))
    external_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    __table_args__ = (Index("ix_id_scim_groups_partner", "eco", "partner"),)


class ScimMember(Base):  # a person in a SCIM group
    __tablename__ = "id_scim_members"
    group_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    person_id: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)


class ScimRoleRule(Base):  # members of the group named ``group_name`` hold ``roles``
    __tablename__ = "id_scim_role_rules"
    eco: Mapped[str] = mapped_column(String(64), primary_key=True)
    partner: Mapped[str] = mapped_column(String(64), primary_key=True)
    group_name: Mapped[str] = mapped_column(String(200), primary_key=True)
    roles: Mapped[list[str]] = mapped_column(default=list)


class Consent(Base):
    __tablename__ = "id_consents"
    eco: Mapped[str] = mapped_column(String(64), primary_key=True)
    person_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(120), primary_key=True)
    scopes: Mapped[list[str]] = mapped_column(default=list)


class LoginThrottle(Base):
    """Failed sign-ins per key (``acct:<eco>:<username>`` or ``addr:<ip>``) within a window."""

    __tablename__ = "id_login_throttle"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_start: Mapped[datetime]
    locked_until: Mapped[datetime | None] = mapped_column(nullable=True)


class Invitation(Base):
    __tablename__ = "id_invitations"
    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    eco: Mapped[str] = mapped_column(String(64))
    partner: Mapped[str] = mapped_column(String(64))
    roles: Mapped[list[str]] = mapped_column(default=list)
    email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    expires_at: Mapped[datetime]
    used: Mapped[bool] = mapped_column(Boolean, default=False)


class UpstreamProvider(Base):
    """A partner's corporate OIDC provider that its people may sign in through (brokering)."""

    __tablename__ = "id_upstreams"
    eco: Mapped[str] = mapped_column(String(64), primary_key=True)
    alias: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    issuer: Mapped[str] = mapped_column(String(300))
    client_id: Mapped[str] = mapped_column(String(120))
    client_secret_enc: Mapped[str] = mapped_column(Text)
    scope: Mapped[str] = mapped_column(String(300), default="openid profile email")
    # {"partner": "northwind", "roles": {"claim": "groups", "map": {"admins": "partner_admin"}}}
    mapping: Mapped[dict[str, Any]] = mapped_column(default=dict)


class UsedAssertion(Base):
    """``jti`` values of client assertions (private_key_jwt), refused when replayed."""

    __tablename__ = "id_used_assertions"
    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    expires_at: Mapped[datetime]


class TotpFactor(Base):
    """A person's authenticator app (RFC 6238): its key sealed, the last step accepted."""

    __tablename__ = "id_totp_factors"
    person_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    eco: Mapped[str] = mapped_column(String(64))
    secret_enc: Mapped[str] = mapped_column(Text)
    # NULL until the person typed a first code (an enrolment in progress)
    confirmed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # a code is accepted only for a later time step than this (no reuse)
    last_step: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime]


class RecoveryCode(Base):
    """A one-time recovery code of a person's (a keyed hash), spent when used."""

    __tablename__ = "id_recovery_codes"
    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    person_id: Mapped[str] = mapped_column(String(64), index=True)
    used_at: Mapped[datetime | None] = mapped_column(nullable=True)


class PushedRequest(Base):
    """A pushed authorization request (RFC 9126): single use, short-lived, one client's."""

    __tablename__ = "id_pushed_requests"
    uri_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    eco: Mapped[str] = mapped_column(String(64))
    client_id: Mapped[str] = mapped_column(String(120))
    # the authorization request's parameters, as pushed: [[name, value], ...]
    params: Mapped[list[Any]] = mapped_column(JSON)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    used: Mapped[bool] = mapped_column(Boolean, default=False)


class PasskeyUser(Base):
    """A person's WebAuthn user handle: random and opaque, never the email or username."""

    __tablename__ = "id_passkey_users"
    person_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    eco: Mapped[str] = mapped_column(String(64))
    handle: Mapped[str] = mapped_column(String(64), unique=True)  # base64url, 32 bytes


class Passkey(Base):
    """A person's WebAuthn credential (a passkey or a security key); several per person."""

    __tablename__ = "id_passkeys"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # ours, for the pages
    # SHA-256 of the credential id (an index of bounded width; the id itself may be long)
    credential_hash: Mapped[str] = mapped_column(String(64), unique=True)
    credential_id: Mapped[str] = mapped_column(Text)  # base64url
    eco: Mapped[str] = mapped_column(String(64))
    person_id: Mapped[str] = mapped_column(String(64), index=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary)  # COSE_Key
    sign_count: Mapped[int] = mapped_column(BigInteger, default=0)
    transports: Mapped[list[str]] = mapped_column(default=list)
    name: Mapped[str] = mapped_column(String(100))
    aaguid: Mapped[str] = mapped_column(String(36))
    backup_eligible: Mapped[bool] = mapped_column(Boolean, default=False)
    backed_up: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # set when an assertion's signature counter did not grow: a cloned authenticator
    # may exist, so the credential is refused until the person removes it
    cloned_at: Mapped[datetime | None] = mapped_column(nullable=True)


class PasskeyChallenge(Base):
    """A WebAuthn challenge handed out: single use (taken by the ceremony), short-lived."""

    __tablename__ = "id_passkey_challenges"
    challenge_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    eco: Mapped[str] = mapped_column(String(64))
    purpose: Mapped[str] = mapped_column(String(16))  # register | authenticate
    person_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    expires_at: Mapped[datetime] = mapped_column(index=True)


# Tables kept in modules of their own join the metadata before the history reads it.
from identity.store import alliance_models  # noqa: E402, F401

# The schema's history: its revisions are in identity/migrations/ (mesh.migrate).
history = History("identity", metadata, Path(__file__).parents[1] / "migrations", outbox=True)
