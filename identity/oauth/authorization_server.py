"""The authorization server: authlib's ``AuthorizationServer`` with our grants, in one build()."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from authlib.oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import InvalidClientError, OAuth2Request
from authlib.oauth2.rfc7636 import CodeChallenge

from identity.domain import signin
from identity.domain.crypto import digest, new_secret
from identity.domain.dpop import token_type
from identity.domain.keys import KeyRing, access_token_alg
from identity.domain.tokens import (
    KNOWN_SCOPES,
    Subject,
    mint_access_token,
)
from identity.oauth import dpop
from identity.oauth.adapter import ClientView, StarletteRequest, current
from identity.oauth.client_auth import ClientSecretJwt, PrivateKeyJwt, refusal
from identity.oauth.exchange import TokenExchangeGrant, allied_client
from identity.oauth.grants import (
    AuthorizationCodeGrant,
    ClientCredentialsGrant,
    DeviceCodeGrant,
    RefreshTokenGrant,
)
from identity.oauth.introspection import Introspection, Revocation
from identity.store import repository as repo
from identity.store.models import RefreshToken


class IdentityServer(AuthorizationServer):  # type: ignore[misc]  # authlib ships no types
    """One server for every ecosystem; the ecosystem of a call comes from :func:`current`."""

    def __init__(self, keys: KeyRing, audience: str) -> None:
        super().__init__(scopes_supported=sorted(KNOWN_SCOPES))
        self.keys = keys
        self.audience = audience
        self.build()

    def build(self) -> None:
        """Every grant, client authentication method and endpoint, registered in one place."""
        self.register_token_generator("default", self.generate_tokens)
        self.register_client_auth_method(PrivateKeyJwt.CLIENT_AUTH_METHOD, PrivateKeyJwt())
        self.register_client_auth_method(ClientSecretJwt.CLIENT_AUTH_METHOD, ClientSecretJwt())
        self.register_grant(AuthorizationCodeGrant, [CodeChallenge(required=True)])
        self.register_grant(RefreshTokenGrant)
        self.register_grant(ClientCredentialsGrant)
        self.register_grant(TokenExchangeGrant)
        self.register_grant(DeviceCodeGrant)
        self.register_endpoint(Introspection)
        self.register_endpoint(Revocation)

    # --- authlib's integration points -------------------------------------------------

    def query_client(self, client_id: str) -> ClientView | None:
        if "@" in client_id:  # a client of an allied ecosystem (never a local client id)
            return allied_client(client_id)
        call = current()
        rows = call.extras.get("rows")
        row = rows.get((call.eco.slug, client_id)) if rows else None
        if row is None:
            row = repo.get_client(call.tx.s, call.eco.slug, client_id)
            if rows and row is not None:
                rows.put((call.eco.slug, client_id), row)
        return ClientView(row) if row is not None else None

    def authenticate_client(
        self, request: Any, methods: list[str], endpoint: str = "token"
    ) -> ClientView:
        """authlib's client authentication (each client by its registered method only,
        :meth:`ClientView.check_endpoint_auth_method`), refusing in words."""
        try:
            client: ClientView = super().authenticate_client(request, methods, endpoint)
        except InvalidClientError as err:
            if err.description and err.description.startswith("The client cannot authenticate"):
                err.description = refusal(request, methods)
            raise
        return client

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        assert isinstance(request, StarletteRequest)
        return request

    def create_json_request(self, request: Any) -> Any:
        return request

    def handle_response(self, status: int, body: Any, headers: Any) -> tuple[int, Any, Any]:
        return status, body, headers

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        return None

    def generate_tokens(
        self,
        grant_type: str,
        client: ClientView,
        user: Subject | None = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        """Every grant names the token's subject and its decided scope (a client's own
        token: :func:`identity.oauth.client_credentials.decide`)."""
        call = current()
        if user is None:
            raise ValueError("a token needs a subject")
        subject = user
        scope = scope or ""
        ttl = expires_in or client.row.access_ttl or call.eco.access_ttl
        signer = self.keys.signer(call.tx, call.eco.slug, access_token_alg(call.eco))
        cnf = dpop.access_binding(client)  # RFC 9449: bound to the proof's key, if any
        access, claims = mint_access_token(
            signer,
            call.issuer,
            self.audience,
            call.eco.slug,
            subject,
            client.client_id,
            scope,
            ttl,
            call.act,
            call.fed,
            cnf,
            call.extras.get("issued_at"),
        )
        call.extras["claims"] = claims
        token: dict[str, Any] = {
            "access_token": access,
            "token_type": token_type(claims),
            "expires_in": ttl,
            "scope": scope,
        }
        if include_refresh_token and subject.is_person:
            token["refresh_token"] = new_secret()
        return token

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        call = current()
        client: ClientView = request.client
        claims = call.extras.get("claims", {})
        refresh = token.get("refresh_token")
        if refresh:
            user: Subject = request.user
            now = datetime.now(UTC)
            call.family_id = call.family_id or uuid.uuid4().hex
            expires_at = now + timedelta(seconds=call.eco.refresh_ttl)
            # without offline_access a refresh token lives only as long as the login session
            session_hash = None
            if "offline_access" not in token["scope"].split():
                session_hash = call.extras.get("session_hash")
                ends = signin.session_expiry(call.tx, session_hash)
                expires_at = min(expires_at, ends) if ends else expires_at
            repo.add(
                call.tx.s,
                RefreshToken(
                    token_hash=digest(refresh),
                    family_id=call.family_id,
                    eco=call.eco.slug,
                    client_id=client.client_id,
                    person_id=user.sub,
                    scope=token["scope"],
                    auth_time=user.auth_time or int(now.timestamp()),
                    issued_at=now,
                    expires_at=expires_at,
                    # so that revoking the family revokes this access token too
                    access_jti=claims.get("jti"),
                    access_expires_at=datetime.fromtimestamp(claims.get("exp", 0), UTC),
                    jkt=dpop.refresh_binding(client),
                    sid=user.extra.get("sid"),
                    session_hash=session_hash,
                    amr=user.extra.get("amr"),
                ),
            )
        call.tx.audit(
            call.eco.slug,
            "token.issued",
            actor=client.client_id,
            target=claims.get("sub"),
            partner=claims.get("partner"),
            grant_type=request.payload.grant_type,
            jti=claims.get("jti"),
            scope=token.get("scope"),
        )
