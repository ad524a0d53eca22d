"""Client authentication beyond client secrets: ``private_key_jwt`` (RFC 7523 §2.2)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from authlib.oauth2.rfc6749 import InvalidClientError
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from joserfc.jwk import KeySet

from identity.oauth.adapter import ClientView, current
from identity.store import repository as repo
from mesh.jws import parse_compact


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
