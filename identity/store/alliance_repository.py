"""SQL of alliances between ecosystems and their audit trail."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from identity.store.alliance_models import Alliance, AllianceAudit


def pair_key(a: str, b: str) -> str:
    return "|".join(sorted((a, b)))


def get(s: Session, alliance: str, lock: bool = False) -> Alliance | None:
    """One alliance (``lock``: for update, so two operators' changes queue up)."""
    return s.get(Alliance, alliance, with_for_update=lock)


def open_between(s: Session, a: str, b: str) -> Alliance | None:
    """The alliance of the pair that is not rejected or ended, if any."""
    return s.scalars(select(Alliance).where(Alliance.pair_key == pair_key(a, b))).first()


def insert(s: Session, row: Alliance) -> bool:
    """Add a new alliance; False when the pair already has an open one (a race lost)."""
    try:
        with s.begin_nested():
            s.add(row)
            s.flush()
    except IntegrityError:
        return False
    return True


def involving(s: Session, eco: str, status: str | None = None) -> Sequence[Alliance]:
    """Every alliance ``eco`` is part of (of one ``status``), the newest change first."""
    query = select(Alliance).where(or_(Alliance.eco_a == eco, Alliance.eco_b == eco))
    if status is not None:
        query = query.where(Alliance.status == status)
    return s.scalars(query.order_by(Alliance.changed_at.desc(), Alliance.id)).all()


def last_cut_before(s: Session, a: str, b: str) -> int | None:
    """The latest cut-off (``before``) made when an alliance of the pair left active."""
    pair = or_(
        (Alliance.eco_a == a) & (Alliance.eco_b == b), (Alliance.eco_a == b) & (Alliance.eco_b == a)
    )
    return s.scalar(select(func.max(Alliance.cut_before)).where(pair))


def add_audit(s: Session, row: AllianceAudit) -> None:
    s.add(row)
    s.flush()


def audit_trail(s: Session, alliance: str) -> Sequence[AllianceAudit]:
    query = select(AllianceAudit).where(AllianceAudit.alliance == alliance)
    return s.scalars(query.order_by(AllianceAudit.id)).all()
