"""Revoking access tokens so that resource servers refuse them too.

Each revoked ``jti`` is recorded (introspection and userinfo read it) and published in a
``pm.v1.identity.token_revoked`` event through the outbox, in the caller's transaction;
the gateway and every service keep a revocation list fed from those events
(:mod:`mesh.revocation`).

Access tokens issued with a refresh token are recorded on its row, so revoking a refresh
family (RFC 7009 §2.1, reuse detection), disabling a person or an ecosystem revokes the
access tokens issued from it as well. Tokens issued without a refresh token (client
credentials, token exchange) are not recorded; disabling a person or an ecosystem cuts
them off all the same, by a rule in the same event: every token of that ``sub`` (or of
the ecosystem) issued up to now is refused until the longest lifetime has passed.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from contracts.v1.identity import (
    RevocationReason,
    RevokedSubject,
    RevokedToken,
    TokenRevoked,
    TokenRevokedData,
)
from identity.store import repository as repo
from identity.store.transaction import Tx

Reason = RevocationReason


LONGEST_ACCESS_TTL_S = 24 * 3600  # what an ecosystem or client may set (identity.http.platform)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def revoke_access(
    tx: Tx,
    eco: str,
    tokens: Iterable[tuple[str, datetime]],
    reason: Reason = "revoked",
    subjects: tuple[str | None, ...] = (),
) -> int:
    """Record each (jti, expiry) as revoked and publish them in one event, with a cut-off
    for each of ``subjects`` (a ``sub``; None: every token of the ecosystem)."""
    revoked = []
    for jti, expires in tokens:
        if repo.revoke_jti(tx.s, jti, expires):
            revoked.append(RevokedToken(jti=jti, exp=int(_aware(expires).timestamp())))
    before = cut_off_time()
    cutoffs = [
        RevokedSubject(sub=sub, before=before, until=before + LONGEST_ACCESS_TTL_S)
        for sub in subjects
    ]
    if revoked or cutoffs:
        data = TokenRevokedData(tokens=revoked, subjects=cutoffs, reason=reason)
        tx.emit(TokenRevoked(ecosystem=eco, data=data))
    return len(revoked)


def cut_off_time() -> int:
    """iat has whole seconds: a token issued in this second is cut off too."""
    return int(datetime.now(UTC).timestamp()) + 1


def cut_off_origin(tx: Tx, eco: str, origin: str, reason: Reason, before: int) -> None:
    """Every token of ``eco`` exchanged from ``origin`` with ``iat`` before ``before`` (an
    alliance left active)."""
    cut = RevokedSubject(origin=origin, before=before, until=before + LONGEST_ACCESS_TTL_S)
    tx.emit(TokenRevoked(ecosystem=eco, data=TokenRevokedData(subjects=[cut], reason=reason)))


def revoke_family(tx: Tx, eco: str, family_id: str, reason: Reason = "revoked") -> int:
    """Revoke a refresh-token family and the access tokens issued from it."""
    count = repo.revoke_family(tx.s, family_id)
    now = datetime.now(UTC)
    revoke_access(tx, eco, repo.live_access_tokens(tx.s, now, family_id=family_id), reason)
    return count


def revoke_session(tx: Tx, eco: str, sid_hash: str) -> None:
    """A login session ended: the refresh tokens tied to it and their access tokens."""
    repo.revoke_session_refresh(tx.s, sid_hash)
    live = repo.live_access_tokens(tx.s, datetime.now(UTC), session_hash=sid_hash)
    revoke_access(tx, eco, live, "revoked")


def revoke_person(tx: Tx, eco: str, person_id: str) -> None:
    """A disabled person: every refresh token and the access tokens issued with them."""
    repo.revoke_person_refresh(tx.s, eco, person_id)
    live = repo.live_access_tokens(tx.s, datetime.now(UTC), eco=eco, person_id=person_id)
    revoke_access(tx, eco, live, "person_disabled", subjects=(person_id,))


def revoke_ecosystem(tx: Tx, eco: str) -> None:
    """A disabled ecosystem: every refresh token and the access tokens issued with them."""
    repo.revoke_eco_refresh(tx.s, eco)
    live = repo.live_access_tokens(tx.s, datetime.now(UTC), eco=eco)
    revoke_access(tx, eco, live, "ecosystem_disabled", subjects=(None,))
