"""SQL of second factors: authenticator apps (TOTP) and recovery codes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from identity.store.models import RecoveryCode, TotpFactor


def get_totp(s: Session, person_id: str, lock: bool = False) -> TotpFactor | None:
    """The person's authenticator (``lock``: for update, so two codes of one step cannot
    both pass on two replicas)."""
    return s.get(TotpFactor, person_id, with_for_update=lock)


def delete_totp(s: Session, person_id: str) -> None:
    s.execute(delete(TotpFactor).where(TotpFactor.person_id == person_id))


def unused_recovery_codes(s: Session, person_id: str) -> int:
    query = select(func.count()).where(
        RecoveryCode.person_id == person_id, RecoveryCode.used_at.is_(None)
    )
    return int(s.scalar(query) or 0)


def replace_recovery_codes(s: Session, person_id: str, hashes: Sequence[str]) -> None:
    delete_recovery_codes(s, person_id)
    s.add_all(RecoveryCode(code_hash=h, person_id=person_id) for h in hashes)
    s.flush()


def delete_recovery_codes(s: Session, person_id: str) -> None:
    s.execute(delete(RecoveryCode).where(RecoveryCode.person_id == person_id))


def _changed(result: object) -> bool:
    return int(getattr(result, "rowcount", 0) or 0) == 1


def claim_step(s: Session, person_id: str, step: int) -> bool:
    """Record ``step`` as the last one accepted, if it is later than the last one: one
    conditional UPDATE, so of two requests with the same code only one succeeds, on
    either engine (PostgreSQL re-checks the condition after the other's commit; SQLite
    runs one writer at a time)."""
    result = s.execute(
        update(TotpFactor)
        .where(
            TotpFactor.person_id == person_id,
            TotpFactor.confirmed_at.is_not(None),
            or_(TotpFactor.last_step.is_(None), TotpFactor.last_step < step),
        )
        .values(last_step=step)
        .execution_options(synchronize_session=False)
    )
    return _changed(result)


def confirm_totp(s: Session, person_id: str, step: int, now: datetime) -> bool:
    """Confirm an enrolment in progress (once), with its first accepted step."""
    result = s.execute(
        update(TotpFactor)
        .where(TotpFactor.person_id == person_id, TotpFactor.confirmed_at.is_(None))
        .values(confirmed_at=now, last_step=step)
        .execution_options(synchronize_session=False)
    )
    return _changed(result)


def spend_recovery_code(s: Session, code_hash: str, person_id: str, now: datetime) -> bool:
    """Mark an unused recovery code of the person's used (once, whoever asks at once)."""
    result = s.execute(
        update(RecoveryCode)
        .where(
            RecoveryCode.code_hash == code_hash,
            RecoveryCode.person_id == person_id,
            RecoveryCode.used_at.is_(None),
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    return _changed(result)
