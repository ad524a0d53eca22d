"""Client authentication by assertion (RFC 7523 §2.2): ``private_key_jwt`` (the client's
own key) and ``client_secret_jwt`` (HS256 under the client's secret), and the readable
refusal every endpoint gives a client that does not authenticate as it is registered."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from authlib.oauth2.rfc6749 import InvalidClientError
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, OctKey

from identity.domain.directory import secret_context
from identity.oauth.adapter import ClientView, current
from identity.store import repository as repo
from mesh.jws import parse_compact

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# An assertion may not live longer than this (its jti is remembered for that long; an
# hour, as authlib's clients sign them).
MAX_ASSERTION_S = 3600


class _Assertion(JWTBearerClientAssertion):  # type: ignore[misc]  # authlib ships no types
    """What both assertion methods share: the audiences, jti replay, a bounded ``exp``, and
    leaving a client registered for another method to that method."""

    def __call__(self, query_client: Any, request: Any) -> ClientView | None:
        data = request.form
        if data.get("client_assertion_type") != ASSERTION_TYPE or not data.get("client_assertion"):
            return None
        _headers, claims = self.extract_assertion(data["client_assertion"])
        sub = claims.get("sub")
        client = query_client(sub) if isinstance(sub, str) else None
        if client is not None and client.row.auth_method != self.CLIENT_AUTH_METHOD:
            return None  # not this method's client: the refusal names its method
        result: ClientView | None = super().__call__(query_client, request)
        return result

    def get_audiences(self) -> list[str]:
        iss = current().issuer
        return [iss, f"{iss}/token"]

    def verify_claims(self, claims: Any) -> None:
        super().verify_claims(claims)
        exp = claims["exp"]
        if not isinstance(exp, int) or exp > time.time() + MAX_ASSERTION_S + self.leeway:
            raise InvalidClientError(
                description=f"the assertion's exp is more than {MAX_ASSERTION_S} s away"
            )

    def validate_jti(self, claims: Any, jti: str) -> bool:
        call = current()
        expires = datetime.now(UTC) + timedelta(seconds=int(self.leeway) + MAX_ASSERTION_S)
        key = f"{call.eco.slug}:{claims['sub']}:{jti}"
        return not repo.assertion_seen(call.tx.s, key, expires)

    def extract_assertion(self, assertion: str) -> Any:
        """The assertion's header and claims, refusing one the kit cannot parse (a nested
        header or payload is a bad assertion, not a RecursionError in joserfc)."""
        try:
            parse_compact(assertion)
        except ValueError:
            raise InvalidClientError(description="Invalid JWT assertion.") from None
        return super().extract_assertion(assertion)


class PrivateKeyJwt(_Assertion):
    """``private_key_jwt``: the client signs an assertion with its own key."""

    CLIENT_AUTH_METHOD = "private_key_jwt"

    def resolve_client_public_key(self, client: ClientView) -> Any:
        return KeySet.import_key_set(client.row.jwks or {"keys": []})  # type: ignore[arg-type]


class ClientSecretJwt(_Assertion):
    """``client_secret_jwt``: an HS256 assertion keyed with the client's secret (kept
    sealed for this method alone, as HMAC needs the secret itself)."""

    CLIENT_AUTH_METHOD = "client_secret_jwt"
    ALGORITHMS = ["HS256"]

    def resolve_client_public_key(self, client: ClientView) -> Any:
        sealed = client.row.secret_enc
        if not sealed:
            raise InvalidClientError(description="the client has no secret to verify with")
        sealer = current().extras["keys"].sealer
        secret = sealer.open(sealed, secret_context(client.row.eco, client.row.client_id))
        return OctKey.import_key(secret)

    def process_assertion_claims(self, assertion: str, resolve_key: Any) -> Any:
        try:
            token = jwt.decode(assertion, resolve_key, algorithms=self.ALGORITHMS)
        except JoseError as exc:
            why = exc.description or f"the assertion does not verify ({exc.error})"
            raise InvalidClientError(description=why) from exc
        self.verify_claims(token.claims)
        return token.claims


def refusal(request: Any, methods: list[str]) -> str:
    """Why a client could not authenticate, in words (not a list's repr)."""
    presented = presented_method(request)
    client_id = presented_client_id(request)
    row = repo.get_client(current().tx.s, current().eco.slug, client_id) if client_id else None
    accepted = ", ".join(methods)
    if row is None:
        return "unknown client, or no client authentication"
    mine = row.auth_method
    if mine not in methods:
        return (
            f"client {client_id} is registered for {mine}, which this endpoint does not "
            f"accept (it accepts {accepted})"
        )
    if presented != mine:
        return f"client {client_id} is registered for {mine}; this request used {presented}"
    return f"client authentication failed ({mine})"


def presented_method(request: Any) -> str:
    """The client authentication method a request uses, by what it carries."""
    auth = request.headers.get("Authorization") or ""
    if auth[:6].lower() == "basic ":
        return "client_secret_basic"
    form = request.form
    if form.get("client_assertion_type") == ASSERTION_TYPE:
        return "a client assertion"
    if form.get("client_secret"):
        return "client_secret_post"
    return "none"


def presented_client_id(request: Any) -> str | None:
    """The client a request names (Basic user, assertion ``sub`` or ``client_id``)."""
    from authlib.oauth2.rfc6749.util import extract_basic_authorization

    basic_id, _ = extract_basic_authorization(request.headers)
    if basic_id:
        return str(basic_id)
    assertion = request.form.get("client_assertion")
    if assertion:
        try:
            sub = parse_compact(assertion).payload.get("sub")
        except ValueError:
            sub = None
        return sub if isinstance(sub, str) else None
    value = request.payload.data.get("client_id")
    return str(value) if value else None
