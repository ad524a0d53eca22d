"""Introspection (RFC 7662) and revocation (RFC 7009) of this issuer's tokens."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint

from identity.domain import revocation
from identity.domain.crypto import digest
from identity.domain.dpop import token_type
from identity.oauth.access_tokens import AccessTokenView, decode_own_access_token
from identity.oauth.adapter import ClientView, current
from identity.oauth.grants import AUTH_METHODS, CONFIDENTIAL_METHODS, RefreshView
from identity.store import repository as repo

ACCESS_TOKEN_HINT = "access_token"
REFRESH_TOKEN_HINT = "refresh_token"


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


class Introspection(IntrospectionEndpoint):  # type: ignore[misc]  # authlib ships no types
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


class Revocation(RevocationEndpoint):  # type: ignore[misc]  # authlib ships no types
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
