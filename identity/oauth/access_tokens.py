"""Reading access tokens this deployment issued: signature by the ecosystem's own key,
issuer, ``typ: at+jwt``; the view authlib's introspection and revocation use."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import jwt

from identity.domain.keys import ALGS
from identity.oauth.adapter import ClientView, current
from identity.store import repository as repo
from mesh.jws import parse_compact


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
            # iat unchecked: a token exchanged across an alliance may be issued a second
            # ahead (identity.oauth.exchange); this issuer signed it, exp is what counts
            options={"verify_aud": False, "verify_exp": verify_exp, "verify_iat": False},
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
