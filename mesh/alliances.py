"""A service's projection of the alliances between ecosystems (identity owns them).

Each service that enforces alliance terms on its data keeps the latest
:class:`~contracts.v1.alliances.AllianceState` of every alliance in its own database
(table ``mesh_alliances``, made by its models and shipped as a migration), fed by one of
its durable consumers reading ``pm.v1.identity.alliance_changed``
(:data:`contracts.bus.CONSUMERS`). A state is kept only when its version is higher than
the one stored, so a replayed or out-of-order event changes nothing.

Reads go to the table in the caller's transaction, not to a copy in memory: with several
replicas behind one queue group only one of them hears each event, and every replica must
stop showing allied data the moment an alliance is ended or suspended. The table holds
one row per alliance, so the lookup is one indexed query.

:meth:`AllianceStore.record` returns the change so the consumer can purge what the other
side's data left behind when an alliance stops being active (:attr:`Change.left_active`).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import JSON, Column, Integer, MetaData, String, Table, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.v1.alliances import AllianceState, AllianceStatus, DirectionTerms

TABLE = "mesh_alliances"


def alliance_table(metadata: MetaData) -> Table:
    if TABLE in metadata.tables:
        return metadata.tables[TABLE]
    return Table(
        TABLE,
        metadata,
        Column("alliance", String(64), primary_key=True),
        Column("eco_a", String(64), nullable=False, index=True),
        Column("eco_b", String(64), nullable=False, index=True),
        Column("status", String(16), nullable=False),
        Column("version", Integer, nullable=False),
        Column("state", JSON, nullable=False),
    )


@dataclass(frozen=True)
class Ally:
    """One active alliance seen from ``eco``: the other ecosystem and both directions."""

    eco: str  # the allied ecosystem
    name: str  # its display name (brand)
    shares: DirectionTerms  # what the ally shares with ``eco``
    receives: DirectionTerms  # what ``eco`` shares with the ally
    state: AllianceState


@dataclass(frozen=True)
class Change:
    """What :meth:`AllianceStore.record` did: ``before`` None when the alliance was new;
    ``applied`` False when the stored version was as new or newer (nothing changed)."""

    before: AllianceStatus | None
    after: AllianceState
    applied: bool

    @property
    def left_active(self) -> bool:
        """The alliance stopped being active with this change: purge the other side's data."""
        return (
            self.applied
            and self.before is AllianceStatus.ACTIVE
            and self.after.status is not AllianceStatus.ACTIVE
        )

    @property
    def became_active(self) -> bool:
        return (
            self.applied
            and self.before is not AllianceStatus.ACTIVE
            and self.after.status is AllianceStatus.ACTIVE
        )


class AllianceStore:
    """The ``mesh_alliances`` table of one service's database."""

    def __init__(self, metadata: MetaData) -> None:
        self.table = alliance_table(metadata)

    async def record(self, s: AsyncSession, state: AllianceState) -> Change:
        """Keep ``state`` if it is newer than the stored one."""
        t = self.table
        row = (
            await s.execute(select(t.c.status, t.c.version).where(t.c.alliance == state.alliance))
        ).first()
        values = {
            "eco_a": state.ecosystems[0],
            "eco_b": state.ecosystems[1],
            "status": state.status.value,
            "version": state.version,
            "state": state.model_dump(mode="json"),
        }
        if row is None:
            await s.execute(t.insert().values(alliance=state.alliance, **values))
            return Change(None, state, applied=True)
        before = AllianceStatus(row.status)
        if row.version >= state.version:
            return Change(before, state, applied=False)
        await s.execute(t.update().where(t.c.alliance == state.alliance).values(**values))
        return Change(before, state, applied=True)

    async def get(self, s: AsyncSession, alliance: str) -> AllianceState | None:
        t = self.table
        raw = (await s.execute(select(t.c.state).where(t.c.alliance == alliance))).scalar()
        return None if raw is None else AllianceState.model_validate(raw)

    async def involving(self, s: AsyncSession, eco: str) -> list[AllianceState]:
        """Every alliance ``eco`` is part of, whatever its status."""
        t = self.table
        rows = await s.execute(select(t.c.state).where(or_(t.c.eco_a == eco, t.c.eco_b == eco)))
        return [AllianceState.model_validate(raw) for raw in rows.scalars()]

    async def allies(self, s: AsyncSession, eco: str) -> list[Ally]:
        """The active alliances of ``eco``, ordered by the ally's id."""
        allies = [
            Ally(
                eco=(other := st.other(eco)),
                name=st.name_of(other),
                shares=st.shared_by(other),
                receives=st.shared_by(eco),
                state=st,
            )
            for st in await self.involving(s, eco)
            if st.active
        ]
        return sorted(allies, key=lambda a: a.eco)

    async def ally(self, s: AsyncSession, eco: str, other: str) -> Ally | None:
        """The active alliance between ``eco`` and ``other``, seen from ``eco``; None when
        there is none (never agreed, proposed only, suspended, rejected or ended)."""
        for ally in await self.allies(s, eco):
            if ally.eco == other:
                return ally
        return None
