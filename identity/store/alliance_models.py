"""Tables of alliances between two ecosystems of this deployment, and their audit trail
(:mod:`identity.domain.alliances`). Part of identity's one metadata (``models.Base``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKeyConstraint, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from identity.store.models import Base


class Alliance(Base):
    """An alliance as it stands (``contracts.v1.alliances.AllianceState``)."""

    __tablename__ = "id_alliances"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    eco_a: Mapped[str] = mapped_column(String(64), index=True)  # proposed it
    eco_b: Mapped[str] = mapped_column(String(64), index=True)
    # proposed | active | suspended | rejected | ended
    status: Mapped[str] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(Integer)
    offered_by: Mapped[str] = mapped_column(String(64))
    # {owner eco: DirectionTerms as JSON}
    terms: Mapped[dict[str, Any]] = mapped_column(JSON)
    changed_at: Mapped[datetime]
    changed_by: Mapped[str] = mapped_column(String(256))
    active_since: Mapped[datetime | None] = mapped_column(nullable=True)
    # the side that suspended it (it alone may resume)
    suspended_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # "a|b" (sorted) while not final, NULL once rejected or ended: at most one open
    # alliance per pair of ecosystems, kept by the database itself
    pair_key: Mapped[str | None] = mapped_column(String(130), nullable=True, unique=True)
    # the last cut-off's ``before`` (Unix seconds) when it left active: tokens exchanged
    # across a later alliance of the pair are issued at or after it
    cut_before: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[datetime]
    __table_args__ = (
        ForeignKeyConstraint(["eco_a"], ["id_ecosystems.slug"]),
        ForeignKeyConstraint(["eco_b"], ["id_ecosystems.slug"]),
    )


class AllianceAudit(Base):
    """One change of an alliance: who, for which side, what, and the terms it left."""

    __tablename__ = "id_alliance_audit"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    alliance: Mapped[str] = mapped_column(String(64), index=True)
    eco: Mapped[str] = mapped_column(String(64))  # the side that acted
    actor: Mapped[str] = mapped_column(String(256))
    # proposed | countered | accepted | rejected | suspended | resumed | ended
    action: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))  # after the change
    version: Mapped[int] = mapped_column(Integer)
    terms: Mapped[dict[str, Any]] = mapped_column(JSON)
    at: Mapped[datetime]
