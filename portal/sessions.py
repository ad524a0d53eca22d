"""Server-side sessions: the browser holds an opaque cookie; tokens stay here, encrypted at rest."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import secrets
import time
from dataclasses import asdict, dataclass, field

from cryptography.fernet import Fernet, InvalidToken

from mesh.db import Database
from portal import repository as repo
from portal.oidc import LoginError, OidcClient, TokenSet

LOGIN_TTL = 600.0


def cookie_name(secure: bool) -> str:
    # The __Host- prefix pins the cookie to this origin (Secure, Path=/, no Domain).
    return "__Host-pm_portal" if secure else "pm_portal"


def _hash(cookie: str) -> str:
    return hashlib.sha256(cookie.encode()).hexdigest()


@dataclass
class Session:
    id: str
    csrf: str
    eco: str
    sub: str
    name: str
    partner: str | None
    roles: list[str] = field(default_factory=list)
    tokens: TokenSet | None = None

    def has_role(self, *roles: str) -> bool:
        return any(r in self.roles for r in roles)

    @property
    def is_admin(self) -> bool:
        return self.has_role("partner_admin")

    @property
    def is_broker(self) -> bool:
        return self.has_role("broker", "operator")

    @property
    def is_operator(self) -> bool:
        return self.has_role("operator")


class SessionStore:
    def __init__(
        self, db: Database, secret_key: str, idle_seconds: int, refresh_margin: int
    ) -> None:
        self.db = db
        key = hashlib.sha256(f"partnermesh-portal-session:{secret_key}".encode()).digest()
        self.fernet = Fernet(base64.urlsafe_b64encode(key))
        self.idle = idle_seconds
        self.margin = refresh_margin
        self._locks: dict[str, asyncio.Lock] = {}

    def _seal(self, tokens: TokenSet) -> str:
        return self.fernet.encrypt(json.dumps(asdict(tokens)).encode()).decode()

    def _open(self, sealed: str) -> TokenSet | None:
        try:
            return TokenSet(**json.loads(self.fernet.decrypt(sealed.encode())))
        except (InvalidToken, ValueError, TypeError):
            return None

    # -- pending logins ----------------------------------------------------------------

    async def begin_login(self, verifier: str, nonce: str, return_to: str) -> str:
        state = secrets.token_urlsafe(24)
        async with self.db.transaction() as s:
            await repo.add_login(s, state, verifier, nonce, return_to, time.time())
        return state

    async def finish_login(self, state: str) -> dict[str, object] | None:
        async with self.db.transaction() as s:
            return await repo.take_login(s, state, time.time() - LOGIN_TTL)

    # -- sessions ----------------------------------------------------------------------

    async def create(
        self,
        eco: str,
        sub: str,
        name: str,
        partner: str | None,
        roles: list[str],
        tokens: TokenSet,
        idp_sid: str | None = None,
    ) -> tuple[str, Session]:
        """A new session; returns the cookie value (only its hash is stored) and the session."""
        cookie = secrets.token_urlsafe(32)
        session = Session(
            _hash(cookie), secrets.token_urlsafe(32), eco, sub, name, partner, roles, tokens
        )
        async with self.db.transaction() as s:
            await repo.purge_sessions(s, time.time() - self.idle)
            await repo.add_session(
                s,
                {
                    "id": session.id,
                    "csrf": session.csrf,
                    "eco": eco,
                    "sub": sub,
                    "name": name,
                    "partner": partner,
                    "roles": roles,
                    "tokens": self._seal(tokens),
                    "access_expires_at": tokens.expires_at,
                    "last_seen": time.time(),
                    "idp_sid": idp_sid,
                },
            )
        return cookie, session

    async def load(self, cookie: str | None) -> Session | None:
        if not cookie or len(cookie) > 200:
            return None
        async with self.db.transaction() as s:
            row = await repo.get_session(s, _hash(cookie))
            if row is None:
                return None
            if row["last_seen"] < time.time() - self.idle:
                await repo.delete_session(s, row["id"])
                return None
            if row["last_seen"] < time.time() - 60:
                await repo.update_session(s, row["id"], last_seen=time.time())
        tokens = self._open(row["tokens"])
        if tokens is None:
            return None
        return Session(
            row["id"],
            row["csrf"],
            row["eco"],
            row["sub"],
            row["name"],
            row["partner"],
            list(row["roles"] or []),
            tokens,
        )

    async def fresh_tokens(self, session: Session, oidc: OidcClient) -> TokenSet | None:
        """The session's tokens, refreshed first when the access token is (nearly) expired.

        ``None`` when the refresh fails: the session is over and has been removed.
        """
        if session.tokens is None:
            return None
        if self._fresh(session.tokens):
            return session.tokens
        # One refresh at a time per session: refresh tokens rotate, and presenting a
        # rotated one twice would make the provider revoke the whole family.
        lock = self._locks.setdefault(session.id, asyncio.Lock())
        async with lock:
            async with self.db.transaction() as s:
                row = await repo.get_session(s, session.id)
            tokens = self._open(row["tokens"]) if row else None
            if tokens is None:
                return None
            if not self._fresh(tokens):
                try:
                    tokens = await oidc.refresh(tokens)
                except LoginError:
                    await self.destroy(session)
                    return None
                async with self.db.transaction() as s:
                    await repo.update_session(
                        s,
                        session.id,
                        tokens=self._seal(tokens),
                        access_expires_at=tokens.expires_at,
                    )
        if not lock.locked():
            self._locks.pop(session.id, None)
        session.tokens = tokens
        return tokens

    def _fresh(self, tokens: TokenSet) -> bool:
        return tokens.expires_at - self.margin > time.time()

    async def end_by_logout_token(self, eco: str, claims: dict[str, object]) -> int | None:
        """End the sessions a verified logout token names; None if its jti was used."""
        sub, sid = claims.get("sub"), claims.get("sid")
        async with self.db.transaction() as s:
            expires = float(claims.get("exp") or time.time()) + 60  # type: ignore[arg-type]
            if await repo.logout_jti_seen(s, str(claims["jti"]), expires, time.time()):
                return None
            return await repo.end_idp_sessions(
                s, eco, sub if isinstance(sub, str) else None, sid if isinstance(sid, str) else None
            )

    async def destroy(self, session: Session) -> None:
        async with self.db.transaction() as s:
            await repo.delete_session(s, session.id)
