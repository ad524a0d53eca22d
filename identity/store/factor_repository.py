"""SQL of second factors: authenticator apps (TOTP) and recovery codes."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from identity.store.models import RecoveryCode, TotpFactor


def get_totp(s: Session, person_id: str, lock: bool = False) -> TotpFactor | None:
    """The person's authenticator (``lock``: for update, so two codes of one step cannot
    both pass on two replicas)."""
    return s.get(TotpFactor, person_id, with_for_update=lock)


def delete_totp(s: Session, person_id: str) -> None:
    s.execute(delete(TotpFactor).where(TotpFactor.person_id == person_id))


def recovery_code(s: Session, code_hash: str) -> RecoveryCode | None:
    return s.get(RecoveryCode, code_hash, with_for_update=True)


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
