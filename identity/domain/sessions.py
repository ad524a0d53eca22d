"""The end of a login session, and what ends with it.

A session ends when the person signs out (RP-initiated logout), when an operator
disables the person, or when it expires. Then the refresh tokens issued in it without
``offline_access`` are revoked (with the access tokens issued with them), and every
client that got tokens in it and registered a ``backchannel_logout_uri`` is owed a
logout token (OpenID Connect Back-Channel Logout 1.0): a row in
``id_logout_deliveries``, delivered in the background with retries
(:mod:`identity.http.backchannel`), so a slow relying party never holds up the person's
logout page, and every replica can deliver what another queued.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from identity.domain import revocation
from identity.domain.keys import Signer
from identity.domain.signin import public_sid
from identity.store import repository as repo
from identity.store.models import LogoutDelivery, SessionClient
from identity.store.transaction import Tx

BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"
LOGOUT_TOKEN_TYP = "logout+jwt"
LOGOUT_TOKEN_TTL_S = 120
MAX_ATTEMPTS = 8  # 1 s, 2 s, 4 s … then given up (audited)


def _now() -> datetime:
    return datetime.now(UTC)


def client_joined(tx: Tx, sid_hash: str | None, eco: str, person_id: str, client_id: str) -> None:
    """Remember that ``client_id`` got tokens in session ``sid_hash``."""
    if sid_hash and repo.get_session_client(tx.s, sid_hash, client_id) is None:
        repo.add(
            tx.s,
            SessionClient(sid_hash=sid_hash, client_id=client_id, eco=eco, person_id=person_id),
        )


def end_session(tx: Tx, eco: str, sid_hash: str, reason: str) -> int:
    """End one session: revoke its refresh tokens, queue its clients' logout tokens.
    Returns how many logout tokens were queued."""
    row = repo.get_session(tx.s, sid_hash)
    person_id = row.person_id if row else None
    repo.delete_session(tx.s, sid_hash)
    revocation.revoke_session(tx, eco, sid_hash)
    queued = 0
    for joined in repo.session_clients(tx.s, sid_hash):
        person_id = person_id or joined.person_id
        client = repo.get_client(tx.s, joined.eco, joined.client_id)
        if client is not None and client.backchannel_logout_uri:
            _queue(tx, joined.eco, client.client_id, joined.person_id, public_sid(sid_hash))
            queued += 1
    repo.forget_session_clients(tx.s, sid_hash)
    if person_id:
        tx.audit(eco, "session.ended", target=person_id, reason=reason, backchannel=queued)
    return queued


def end_person_sessions(tx: Tx, eco: str, person_id: str, reason: str) -> int:
    """End every session of a person (disabled by an operator)."""
    return sum(
        end_session(tx, eco, sid_hash, reason)
        for sid_hash in repo.sessions_of(tx.s, eco, person_id)
    )


def end_expired_sessions(tx: Tx, limit: int = 100) -> int:
    """End sessions past their expiry (the delivery loop calls this now and then)."""
    expired = repo.expired_sessions(tx.s, _now(), limit)
    return sum(end_session(tx, eco, sid_hash, "expired") for eco, sid_hash in expired)


def _queue(tx: Tx, eco: str, client_id: str, person_id: str, sid: str | None) -> None:
    now = _now()
    repo.add(
        tx.s,
        LogoutDelivery(
            jti=uuid.uuid4().hex,
            eco=eco,
            client_id=client_id,
            person_id=person_id,
            sid=sid,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        ),
    )


def claim_due(tx: Tx, lease_s: float, limit: int = 20) -> list[LogoutDelivery]:
    """Deliveries due now, leased to the caller (another replica skips them meanwhile)."""
    now = _now()
    rows = list(repo.due_deliveries(tx.s, now, limit))
    for row in rows:
        row.next_attempt_at = now + timedelta(seconds=lease_s)
    tx.s.flush()
    return rows


def logout_token(signer: Signer, issuer: str, delivery: LogoutDelivery) -> str:
    """The signed logout token of one delivery (§2.4: no nonce; sub and sid; events)."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": delivery.client_id,
        "iat": now,
        "exp": now + LOGOUT_TOKEN_TTL_S,
        "jti": delivery.jti,
        "sub": delivery.person_id,
        "events": {BACKCHANNEL_EVENT: {}},
    }
    if delivery.sid:
        claims["sid"] = delivery.sid
    headers = {"kid": signer.kid, "typ": LOGOUT_TOKEN_TYP}
    return jwt.encode(claims, signer.key, signer.alg, headers=headers)  # type: ignore[arg-type]


def delivered(tx: Tx, jti: str) -> None:
    row = tx.s.get(LogoutDelivery, jti)
    if row is not None:
        tx.audit(row.eco, "backchannel_logout.delivered", actor=row.client_id, target=row.person_id)
        repo.remove(tx.s, row)


def failed(tx: Tx, jti: str, error: str) -> None:
    """Back off (1 s, 2 s, 4 s …) and try again; give up after :data:`MAX_ATTEMPTS`."""
    row = tx.s.get(LogoutDelivery, jti)
    if row is None:
        return
    row.attempts += 1
    row.last_error = error[:300]
    if row.attempts >= MAX_ATTEMPTS:
        tx.audit(
            row.eco,
            "backchannel_logout.failed",
            actor=row.client_id,
            target=row.person_id,
            outcome="failure",
            error=row.last_error,
        )
        repo.remove(tx.s, row)
        return
    row.next_attempt_at = _now() + timedelta(seconds=min(2 ** (row.attempts - 1), 300))
    tx.s.flush()
