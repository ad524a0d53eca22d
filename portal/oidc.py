"""The portal as an OIDC relying party: authorization code + PKCE, refresh, RP-initiated logout.

A confidential client: the code is redeemed server-side with the client secret, and
the tokens stay on the server (backend-for-frontend).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt

from mesh.consttime import same

BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"
LOGOUT_TOKEN_TYP = "logout+jwt"
LOGOUT_TOKEN_MAX_AGE_S = 300


class LoginError(Exception):
    """The provider refused or answered something we cannot trust; shown to the person."""


def pkce_pair() -> tuple[str, str]:
    """A PKCE code verifier and its S256 challenge (RFC 7636)."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@dataclass
class TokenSet:
    access_token: str
    refresh_token: str | None
    id_token: str | None
    expires_at: float

    @classmethod
    def from_response(cls, body: dict[str, Any], previous: TokenSet | None = None) -> TokenSet:
        if not isinstance(body.get("access_token"), str):
            raise LoginError("the identity provider sent no access token")
        expires_in = float(body.get("expires_in") or 300)
        return cls(
            access_token=body["access_token"],
            refresh_token=body.get("refresh_token")
            or (previous.refresh_token if previous else None),
            id_token=body.get("id_token") or (previous.id_token if previous else None),
            expires_at=time.time() + expires_in,
        )


class OidcClient:
    def __init__(
        self,
        http: httpx.AsyncClient,
        issuer: str,
        client_id: str,
        client_secret: str,
        redirect_uri: str,
    ) -> None:
        self.http = http
        self.issuer = issuer
        self.client_id = client_id
        self.client_secret = client_secret
        self.redirect_uri = redirect_uri
        self._meta: dict[str, Any] | None = None
        self._meta_at = 0.0
        self._jwks: dict[str, Any] = {}

    async def metadata(self) -> dict[str, Any]:
        if self._meta is None or time.monotonic() - self._meta_at > 300:
            try:
                resp = await self.http.get(f"{self.issuer}/.well-known/openid-configuration")
                resp.raise_for_status()
                meta = resp.json()
            except (httpx.HTTPError, ValueError) as exc:
                raise LoginError("the identity provider is not reachable") from exc
            if meta.get("issuer") != self.issuer:
                raise LoginError("the identity provider's discovery document names another issuer")
            self._meta, self._meta_at = meta, time.monotonic()
        return self._meta

    async def response_issuer_ok(self, iss: str | None) -> bool:
        """RFC 9207 §2.4: an authorization response names its issuer, and it must be ours
        (a mix-up attack hands this client another provider's response); a provider that
        does not say it sends ``iss`` may leave it out."""
        meta = await self.metadata()
        if not iss:
            return not meta.get("authorization_response_iss_parameter_supported", False)
        return same(iss, str(meta["issuer"]))

    async def authorize_url(self, state: str, nonce: str, challenge: str, scope: str) -> str:
        meta = await self.metadata()
        query = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": scope,
            "state": state,
            "nonce": nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        return f"{meta['authorization_endpoint']}?{urlencode(query)}"

    async def _token(self, form: dict[str, str]) -> dict[str, Any]:
        meta = await self.metadata()
        try:
            resp = await self.http.post(
                meta["token_endpoint"], data=form, auth=(self.client_id, self.client_secret)
            )
        except httpx.HTTPError as exc:
            raise LoginError("the identity provider is not reachable") from exc
        if resp.status_code != 200:
            try:
                error = resp.json().get("error", "error")
            except ValueError:
                error = f"HTTP {resp.status_code}"
            raise LoginError(f"the identity provider refused: {error}")
        return dict(resp.json())

    async def exchange_code(self, code: str, verifier: str) -> TokenSet:
        body = await self._token(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": self.redirect_uri,
                "code_verifier": verifier,
            }
        )
        return TokenSet.from_response(body)

    async def refresh(self, tokens: TokenSet) -> TokenSet:
        if not tokens.refresh_token:
            raise LoginError("no refresh token")
        body = await self._token(
            {"grant_type": "refresh_token", "refresh_token": tokens.refresh_token}
        )
        return TokenSet.from_response(body, previous=tokens)

    async def verify_id_token(self, id_token: str, nonce: str) -> dict[str, Any]:
        """Check the ID token's signature (issuer JWKS), issuer, audience and nonce."""
        try:
            kid = jwt.get_unverified_header(id_token).get("kid", "")
            key = await self._key(kid)
            claims = jwt.decode(
                id_token,
                key=key,
                algorithms=["RS256", "PS256", "ES256", "EdDSA"],
                audience=self.client_id,
                issuer=self.issuer,
                leeway=30,
            )
        except jwt.PyJWTError as exc:
            raise LoginError(f"the ID token is not valid ({exc})") from exc
        if claims.get("nonce") != nonce:
            raise LoginError("the ID token does not answer this login (nonce mismatch)")
        return dict(claims)

    async def verify_logout_token(self, token: str) -> dict[str, Any]:
        """A back-channel logout token (OpenID Connect Back-Channel Logout 1.0 §2.6):
        typ ``logout+jwt``, signed by the issuer (JWKS), issuer, audience, iat and exp,
        the back-channel logout event, ``sub`` or ``sid``, a ``jti``, and no ``nonce``.
        Replay (the jti) is the caller's to check."""
        try:
            header = jwt.get_unverified_header(token)
            if header.get("typ") != LOGOUT_TOKEN_TYP:
                raise LoginError("not a logout token (typ)")
            key = await self._key(str(header.get("kid", "")))
            claims = dict(
                jwt.decode(
                    token,
                    key=key,
                    algorithms=["RS256", "PS256", "ES256", "EdDSA"],
                    audience=self.client_id,
                    issuer=self.issuer,
                    leeway=30,
                    options={"require": ["iss", "aud", "iat", "exp", "jti"]},
                )
            )
        except jwt.PyJWTError as exc:
            raise LoginError(f"the logout token is not valid ({exc})") from exc
        events = claims.get("events")
        if not isinstance(events, dict) or not isinstance(events.get(BACKCHANNEL_EVENT), dict):
            raise LoginError("the logout token lacks the back-channel logout event")
        if "nonce" in claims:
            raise LoginError("a logout token must not carry a nonce")
        if not isinstance(claims.get("sub") or claims.get("sid"), str):
            raise LoginError("the logout token names neither sub nor sid")
        if claims["iat"] < time.time() - LOGOUT_TOKEN_MAX_AGE_S:
            raise LoginError("the logout token is too old")
        return claims

    async def _key(self, kid: str) -> Any:
        if kid not in self._jwks:
            meta = await self.metadata()
            try:
                resp = await self.http.get(meta["jwks_uri"])
                resp.raise_for_status()
                keys = resp.json().get("keys", [])
            except (httpx.HTTPError, ValueError) as exc:
                raise LoginError("the identity provider's keys are not reachable") from exc
            self._jwks = {k["kid"]: jwt.PyJWK.from_dict(k) for k in keys if "kid" in k}
        if kid not in self._jwks:
            raise LoginError("the ID token is signed with an unknown key")
        return self._jwks[kid].key

    async def end_session_url(self, id_token: str | None, post_logout: str) -> str | None:
        try:
            meta = await self.metadata()
        except LoginError:
            return None
        endpoint = meta.get("end_session_endpoint")
        if not endpoint:
            return None
        query = {"client_id": self.client_id, "post_logout_redirect_uri": post_logout}
        if id_token:
            query["id_token_hint"] = id_token
        return f"{endpoint}?{urlencode(query)}"


def unverified_claims(token: str) -> dict[str, Any]:
    """Claims of our own access token, for display only (the gateway verifies it on every call)."""
    try:
        return dict(jwt.decode(token, options={"verify_signature": False}))
    except jwt.PyJWTError:
        return {}
