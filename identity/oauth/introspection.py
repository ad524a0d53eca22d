"""Introspection (RFC 7662), revocation (RFC 7009) and private_key_jwt client authentication."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from authlib.oauth2.rfc6749 import InvalidClientError
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from joserfc.jwk import KeySet

from identity.domain import revocation
from identity.domain.crypto import digest
from identity.domain.dpop import token_type
from identity.domain.keys import ALGS
from identity.oauth.adapter import ClientView, current
from identity.oauth.grants import AUTH_METHODS, CONFIDENTIAL_METHODS, RefreshView
from identity.store import repository as repo
from mesh.jws import parse_compact

ACCESS_TOKEN_HINT = "access_token"
REFRESH_TOKEN_HINT = "refresh_token"


class AccessTokenView:
    """A JWT access token this issuer signed (signature and issuer checked)."""

    def __init__(self, claims: dict[str, Any]) -> None:
        self.claims = claims

    def check_client(self, client: ClientView) -> bool:
        return self.claims.get("client_id") == client.client_id

    def is_expired(self) -> bool:
        return int(self.claims["exp"]) <= int(datetime.now(UTC).timestamp())

    def is_revoked(self) -> bool:
        return repo.jti_revoked(current().tx.s, self.claims["jti"])


def decode_own_access_token(token: str, verify_exp: bool = True) -> dict[str, Any] | None:
    """Claims of an access token issued by the current ecosystem, or None."""
    return decode_access_token(token, current().eco.slug, verify_exp)


def issuer_of(eco: str) -> str:
    """The issuer of another ecosystem of this deployment."""
    return current().issuer.rsplit("/eco/", 1)[0] + f"/eco/{eco}"


def decode_access_token(token: str, eco: str, verify_exp: bool = True) -> dict[str, Any] | None:
    """Claims of an access token signed by ecosystem ``eco`` of this deployment, or None."""
    call = current()
    if eco != call.eco.slug:  # another ecosystem's token (federation): not a disabled one
        other = repo.get_ecosystem(call.tx.s, eco)
        if other is None or other.disabled_at is not None:
            return None
    try:
        # Parsed by the kit first (bounded in depth): PyJWT's json.loads would raise
        # RecursionError on a nested header, not an error of the token.
        header = parse_compact(token).header
    except ValueError:
        return None
    try:
        if str(header.get("typ", "")).lower() != "at+jwt":
            return None
        kid = header.get("kid")
        jwk = call.extras["keys"].public_jwk(call.tx, eco, kid) if isinstance(kid, str) else None
        if jwk is None or jwk.algorithm_name not in ALGS:
            return None
        claims: dict[str, Any] = jwt.decode(
            token,
            jwk.key,
            algorithms=[jwk.algorithm_name],  # the key's own alg, never the token's choice
            issuer=issuer_of(eco),
            options={"verify_aud": False, "verify_exp": verify_exp},
        )
    except jwt.PyJWTError:
        return None
    return claims if claims.get("eco") == eco else None


def origin_eco(token: str) -> str | None:
    """The ecosystem whose issuer a token names, when it is another one of this deployment."""
    try:
        iss = parse_compact(token).payload.get("iss", "")
    except ValueError:
        return None
    prefix = issuer_of("")
    if isinstance(iss, str) and iss.startswith(prefix) and "/" not in iss[len(prefix) :]:
        other = iss[len(prefix) :]
        return other if other and other != current().eco.slug else None
    return None


def find_token(token: str, hint: str | None) -> AccessTokenView | RefreshView | None:
    order = [REFRESH_TOKEN_HINT, ACCESS_TOKEN_HINT]
    if hint == ACCESS_TOKEN_HINT:
        order.reverse()
    for kind in order:
        if kind == ACCESS_TOKEN_HINT:
            claims = decode_own_access_token(token, verify_exp=False)
            if claims:
                return AccessTokenView(claims)
        else:
            row = repo.get_refresh(current().tx.s, digest(token))
            if row is not None and row.eco == current().eco.slug:
                return RefreshView(row)
    return None


class Introspection(IntrospectionEndpoint):
    CLIENT_AUTH_METHODS = CONFIDENTIAL_METHODS

    def query_token(self, token_string: str, token_type_hint: str | None) -> Any:
        return find_token(token_string, token_type_hint)

    def check_permission(self, token: Any, client: ClientView, request: Any) -> bool:
        # Any confidential client of the ecosystem may introspect (resource servers).
        return True

    def introspect_token(self, token: Any) -> dict[str, Any]:
        if isinstance(token, AccessTokenView):
            return {"active": True, "token_type": token_type(token.claims), **token.claims}
        row = token.row
        return {
            "active": True,
            "token_type": "refresh_token",
            "client_id": row.client_id,
            "sub": row.person_id,
            "scope": row.scope,
            "eco": row.eco,
            "iss": current().issuer,
            "exp": int(row.expires_at.timestamp()),
            "iat": int(row.issued_at.timestamp()),
            **({"cnf": {"jkt": row.jkt}} if row.jkt else {}),  # RFC 9449: bound to a key
        }


class Revocation(RevocationEndpoint):
    CLIENT_AUTH_METHODS = AUTH_METHODS

    def query_token(self, token_string: str, token_type_hint: str | None) -> Any:
        return find_token(token_string, token_type_hint)

    def revoke_token(self, token: Any, request: Any) -> None:
        call = current()
        if isinstance(token, AccessTokenView):
            expires = datetime.fromtimestamp(int(token.claims["exp"]), UTC)
            revocation.revoke_access(call.tx, call.eco.slug, [(token.claims["jti"], expires)])
            target, kind = token.claims.get("sub"), ACCESS_TOKEN_HINT
        else:
            revocation.revoke_family(call.tx, call.eco.slug, token.row.family_id)
            target, kind = token.row.person_id, REFRESH_TOKEN_HINT
        call.tx.audit(
            call.eco.slug,
            "token.revoked",
            actor=request.client.client_id,
            target=target,
            token_type=kind,
        )


class PrivateKeyJwt(JWTBearerClientAssertion):
    """``private_key_jwt`` (RFC 7523 §2.2): the client signs an assertion with its own key."""

    CLIENT_AUTH_METHOD = "private_key_jwt"

    def get_audiences(self) -> list[str]:
        iss = current().issuer
        return [iss, f"{iss}/token"]

    def validate_jti(self, claims: Any, jti: str) -> bool:
        call = current()
        expires = datetime.now(UTC) + timedelta(seconds=int(self.leeway) + 3600)
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

    def resolve_client_public_key(self, client: ClientView) -> Any:
        return KeySet.import_key_set(client.row.jwks or {"keys": []})  # type: ignore[arg-type]
