"""Grants: authorization code (+PKCE, OIDC ID tokens), refresh with rotation and reuse
detection, client credentials. Token exchange lives in :mod:`identity.oauth.exchange`."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from authlib.oauth2.rfc6749 import (
    AccessDeniedError,
    InvalidGrantError,
    InvalidRequestError,
    UnauthorizedClientError,
    grants,
)
from authlib.oauth2.rfc8628 import AuthorizationPendingError, ExpiredTokenError, SlowDownError

from identity.domain import device, revocation, sessions, signin
from identity.domain.crypto import digest
from identity.domain.dpop import valid_jkt
from identity.domain.tokens import Subject, grant_scope, mint_id_token
from identity.oauth import client_credentials, dpop
from identity.oauth.adapter import ClientView, current
from identity.store import repository as repo
from identity.store.models import AuthCode, RefreshToken

CONFIDENTIAL_METHODS = [
    "client_secret_basic",
    "client_secret_post",
    "private_key_jwt",
    "client_secret_jwt",
]
AUTH_METHODS = [*CONFIDENTIAL_METHODS, "none"]
# How an authorization response may travel: in the redirect's query, or posted by a page
# (OAuth 2.0 Form Post Response Mode). Not fragment: no response type here needs it.
RESPONSE_MODES = ("query", "form_post")


def quoted(value: str, limit: int = 80) -> str:
    """A caller's value as an OAuth error description may hold it (RFC 6749 allows only
    printable ASCII but double quote and backslash there), or a stand-in."""
    if len(value) <= limit and all(" " <= c <= "~" and c not in '"\\' for c in value):
        return value
    return "(a value not shown)"


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def person_subject(
    person_id: str, auth_time: int | None, sid: str | None = None, amr: list[str] | None = None
) -> Subject | None:
    """The person ``person_id`` of this ecosystem, if active; ``sid``: the login session
    their tokens came from (ID tokens name it); ``amr``: how they signed in there."""
    call = current()
    person = repo.get_person(call.tx.s, person_id)
    if person is None or not person.active or person.eco != call.eco.slug:
        return None
    return Subject(
        sub=person.id,
        partner=person.partner,
        roles=tuple(person.roles),
        name=person.name,
        email=person.email,
        username=person.username,
        auth_time=auth_time,
        extra={k: v for k, v in (("sid", sid), ("amr", amr)) if v},
    )


def id_token(grant: Any, token: dict[str, Any], nonce: str | None) -> str:
    """The ID token issued with ``token`` to the grant's client, for its user."""
    call = current()
    client: ClientView = grant.request.client
    signer = grant.server.keys.signer(call.tx, call.eco.slug, client.row.id_token_alg)
    return mint_id_token(
        signer,
        call.issuer,
        call.eco.slug,
        client.client_id,
        grant.request.user,
        token["scope"],
        token["expires_in"],
        nonce,
        token["access_token"],
    )


def in_session(subject: Subject | None, sid_hash: str | None) -> Subject | None:
    """``subject`` as signed in through login session ``sid_hash`` (its ``sid`` in ID
    tokens; its refresh tokens end with the session unless granted ``offline_access``)."""
    if subject is None or not sid_hash:
        return subject
    current().extras["session_hash"] = sid_hash
    extra = {**subject.extra, "sid": signin.public_sid(sid_hash), "sid_hash": sid_hash}
    return dataclasses.replace(subject, extra=extra)


class CodeView:
    """An authorization code row as authlib's grant expects it."""

    def __init__(self, row: AuthCode) -> None:
        self.row = row
        self.code_challenge = row.code_challenge
        self.code_challenge_method = row.code_challenge_method

    def get_redirect_uri(self) -> str:
        return self.row.redirect_uri

    def get_scope(self) -> str:
        return self.row.scope

    def get_nonce(self) -> str | None:
        return self.row.nonce

    def get_auth_time(self) -> int:
        return self.row.auth_time


class RefreshView:
    def __init__(self, row: RefreshToken) -> None:
        self.row = row

    def check_client(self, client: ClientView) -> bool:
        return self.row.client_id == client.client_id

    def get_scope(self) -> str:
        return self.row.scope

    def get_expires_in(self) -> int:
        return int((_aware(self.row.expires_at) - _now()).total_seconds())

    def is_expired(self) -> bool:
        return _aware(self.row.expires_at) <= _now()

    def is_revoked(self) -> bool:
        return self.row.revoked or self.row.rotated


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):  # type: ignore[misc]  # authlib ships no types
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS

    def validate_authorization_request(self) -> str:
        redirect_uri: str = super().validate_authorization_request()
        data = self.request.payload.data
        method = data.get("code_challenge_method")
        if self.request.client.is_public and not data.get("code_challenge"):
            raise InvalidRequestError(
                "PKCE is required for public clients (code_challenge, S256)",
                redirect_uri=redirect_uri,
                state=self.request.payload.state,
            )
        if data.get("code_challenge") and method != "S256":
            raise InvalidRequestError(
                "code_challenge_method must be S256",
                redirect_uri=redirect_uri,
                state=self.request.payload.state,
            )
        mode = data.get("response_mode")
        if mode is not None and mode not in RESPONSE_MODES:
            raise InvalidRequestError(
                f"response_mode {quoted(mode)} is not supported here "
                f"(only {', '.join(RESPONSE_MODES)})",
                redirect_uri=redirect_uri,
                state=self.request.payload.state,
            )
        if not valid_jkt(data.get("dpop_jkt")):
            raise InvalidRequestError(
                "dpop_jkt must be a JWK SHA-256 thumbprint",
                redirect_uri=redirect_uri,
                state=self.request.payload.state,
            )
        return redirect_uri

    def save_authorization_code(self, code: str, request: Any) -> None:
        call = current()
        user: Subject = request.user
        data = request.payload.data
        repo.add(
            call.tx.s,
            AuthCode(
                code_hash=digest(code),
                eco=call.eco.slug,
                client_id=request.client.client_id,
                person_id=user.sub,
                redirect_uri=request.payload.redirect_uri or "",
                scope=grant_scope(request.payload.scope, request.client.row.scopes, user.roles),
                nonce=data.get("nonce"),
                code_challenge=data.get("code_challenge"),
                code_challenge_method=data.get("code_challenge_method"),
                auth_time=user.auth_time or int(_now().timestamp()),
                expires_at=_now() + timedelta(seconds=call.extras["code_ttl"]),
                dpop_jkt=data.get("dpop_jkt"),
                sid=user.extra.get("sid"),
                session_hash=user.extra.get("sid_hash"),
                amr=user.extra.get("amr"),
            ),
        )
        sessions.client_joined(
            call.tx, user.extra.get("sid_hash"), call.eco.slug, user.sub, request.client.client_id
        )

    def query_authorization_code(self, code: str, client: ClientView) -> CodeView | None:
        call = current()
        row = repo.get_code(call.tx.s, digest(code))
        if row is None or row.eco != call.eco.slug or row.client_id != client.client_id:
            return None
        if row.used:
            # RFC 6749 §4.1.2: a replayed code revokes what was issued from it.
            if row.family_id:
                revocation.revoke_family(call.tx, call.eco.slug, row.family_id, "code_reuse")
            call.tx.audit(
                call.eco.slug,
                "code.reuse_detected",
                actor=client.client_id,
                target=row.person_id,
                outcome="failure",
            )
            return None
        if _aware(row.expires_at) <= _now():
            return None
        return CodeView(row)

    def delete_authorization_code(self, authorization_code: CodeView) -> None:
        authorization_code.row.used = True
        authorization_code.row.family_id = current().family_id
        current().tx.s.flush()

    def authenticate_user(self, authorization_code: CodeView) -> Subject | None:
        row = authorization_code.row
        dpop.check_code_binding(row.dpop_jkt)
        subject = person_subject(row.person_id, row.auth_time, row.sid, row.amr)
        return in_session(subject, row.session_hash)

    def create_token_response(self) -> tuple[int, dict[str, Any], Any]:
        call = current()
        call.family_id = uuid.uuid4().hex
        status, token, headers = super().create_token_response()
        code: CodeView = self.request.authorization_code
        if "openid" in token.get("scope", "").split():
            token["id_token"] = id_token(self, token, code.get_nonce())
        return status, token, headers


class RefreshTokenGrant(grants.RefreshTokenGrant):  # type: ignore[misc]  # authlib ships no types
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> RefreshView | None:
        call = current()
        row = repo.get_refresh(call.tx.s, digest(refresh_token))
        if row is None or row.eco != call.eco.slug or row.revoked:
            return None
        dpop.check_refresh_binding(row.jkt)  # before reuse detection: no key, no effect
        if row.rotated:
            revoked = revocation.revoke_family(
                call.tx, call.eco.slug, row.family_id, "refresh_reuse"
            )
            call.tx.audit(
                call.eco.slug,
                "refresh.reuse_detected",
                actor=row.client_id,
                target=row.person_id,
                outcome="failure",
                family=row.family_id,
                revoked=revoked,
            )
            return None
        if _aware(row.expires_at) <= _now():
            return None
        if row.session_hash and not signin.live_session(call.tx, row.session_hash):
            return None  # issued without offline_access: it ended with the login session
        call.family_id = row.family_id
        call.extras["session_hash"] = row.session_hash
        return RefreshView(row)

    def authenticate_user(self, refresh_token: RefreshView) -> Subject | None:
        row = refresh_token.row
        return person_subject(row.person_id, row.auth_time, row.sid, row.amr)

    def create_token_response(self) -> tuple[int, dict[str, Any], Any]:
        """OIDC Core §12.2: a refresh of an ``openid`` grant brings a new ID token (same
        subject, ``auth_time`` and ``sid``; no nonce)."""
        status, token, headers = super().create_token_response()
        if "openid" in token.get("scope", "").split():
            token["id_token"] = id_token(self, token, None)
        return status, token, headers

    def revoke_old_credential(self, refresh_token: RefreshView) -> None:
        refresh_token.row.rotated = True
        current().tx.s.flush()


class ClientCredentialsGrant(grants.ClientCredentialsGrant):  # type: ignore[misc]  # authlib ships no types
    """authlib authenticates the client (through :class:`ClientView`'s checks); every other
    check and what the token holds is :func:`identity.oauth.client_credentials.decide`, which the
    lean path calls too."""

    TOKEN_ENDPOINT_AUTH_METHODS = CONFIDENTIAL_METHODS

    def validate_token_request(self) -> None:
        client: ClientView = self.authenticate_token_endpoint_client()
        self.request.client = client
        proof = dpop.current_proof() is not None
        self.decision = client_credentials.decide(
            current().eco, client.row, self.request.payload.scope, proof
        )

    def generate_token(
        self,
        user: Any = None,
        scope: str | None = None,
        grant_type: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        decision = self.decision
        token: dict[str, Any] = super().generate_token(
            user=decision.subject,
            scope=decision.scope,
            expires_in=decision.ttl,
            include_refresh_token=False,
        )
        return token


class DeviceCodeGrant(grants.BaseGrant, grants.TokenEndpointMixin):  # type: ignore[misc]  # authlib ships no types
    """RFC 8628 §3.4/3.5: the device polls with its device code until the person decided.

    A pending grant answers ``authorization_pending``, or ``slow_down`` (and 5 s more
    interval from then on) when polled sooner than its interval; an expired one
    ``expired_token``; a denied one ``access_denied``; an approved one its tokens, once.
    """

    GRANT_TYPE = device.GRANT_TYPE
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS

    def validate_token_request(self) -> None:
        code = self.request.payload.data.get("device_code")
        if not code:
            raise InvalidRequestError("device_code is required")
        client: ClientView = self.authenticate_token_endpoint_client()
        if not client.check_grant_type(self.GRANT_TYPE):
            raise UnauthorizedClientError("this client may not use the device grant")
        call = current()
        row = repo.get_device_grant(call.tx.s, digest(code))
        if row is None or row.eco != call.eco.slug or row.client_id != client.client_id:
            raise InvalidGrantError("unknown device code")
        now = _now()
        if row.status == "used":
            raise InvalidGrantError("the device code was already used")
        if _aware(row.expires_at) <= now:
            raise ExpiredTokenError()
        if row.status == "denied":
            raise AccessDeniedError()
        if row.status == "pending":
            last, row.last_poll_at = row.last_poll_at, now
            if last is not None and (now - _aware(last)).total_seconds() < row.interval:
                row.interval += device.SLOW_DOWN_STEP_S
                call.tx.s.flush()
                raise SlowDownError()
            call.tx.s.flush()
            raise AuthorizationPendingError()
        session = repo.get_session(call.tx.s, row.session_hash) if row.session_hash else None
        amr = session.amr if session else None  # how the approving person signed in
        user = in_session(
            person_subject(str(row.person_id), row.auth_time, amr=amr), row.session_hash
        )
        if user is None:
            raise InvalidGrantError("the person who approved is no longer active")
        row.status = "used"
        call.tx.s.flush()
        self.request.client = client
        self.request.user = user
        self.device_row = row

    def create_token_response(self) -> tuple[int, dict[str, Any], Any]:
        call = current()
        call.family_id = uuid.uuid4().hex
        client: ClientView = self.request.client
        scope = self.device_row.scope
        token: dict[str, Any] = self.generate_token(
            user=self.request.user,
            scope=scope,
            include_refresh_token=client.check_grant_type("refresh_token"),
        )
        self.save_token(token)
        if "openid" in scope.split():
            signer = self.server.keys.signer(call.tx, call.eco.slug, client.row.id_token_alg)
            token["id_token"] = mint_id_token(
                signer,
                call.issuer,
                call.eco.slug,
                client.client_id,
                self.request.user,
                token["scope"],
                token["expires_in"],
                None,
                token["access_token"],
            )
        return 200, token, self.TOKEN_RESPONSE_HEADER
