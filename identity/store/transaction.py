"""One unit of work: a synchronous session inside ``run_sync`` plus the events it emits."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from sqlalchemy.orm import Session

from contracts.envelope import EventBase
from contracts.v1.identity import AuditData, AuditEvent
from mesh.db import Database
from mesh.outbox import Outbox

T = TypeVar("T")


@dataclass
class Tx:
    """The session of the current transaction and the events to add to its outbox."""

    s: Session
    events: list[EventBase] = field(default_factory=list)

    def emit(self, event: EventBase) -> None:
        self.events.append(event)

    def audit(
        self,
        eco: str,
        action: str,
        actor: str | None = None,
        target: str | None = None,
        outcome: Literal["success", "failure"] = "success",
        partner: str | None = None,
        **details: Any,
    ) -> None:
        self.emit(audit_event(eco, action, actor, target, outcome, partner, **details))


def audit_event(
    eco: str,
    action: str,
    actor: str | None = None,
    target: str | None = None,
    outcome: Literal["success", "failure"] = "success",
    partner: str | None = None,
    **details: Any,
) -> AuditEvent:
    """The audit event of one action (what :meth:`Tx.audit` emits)."""
    data = AuditData(action=action, actor=actor, target=target, outcome=outcome, details=details)
    return AuditEvent(ecosystem=eco, partner=partner, subject=target, data=data)


async def run_tx(db: Database, outbox: Outbox, fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn(tx, *args)`` in one transaction; its events join the outbox in that transaction.

    Any exception rolls everything back, events included.
    """
    async with db.transaction() as session:
        events: list[EventBase] = []
        result: T = await session.run_sync(lambda s: fn(Tx(s, events), *args))
        for event in events:
            await outbox.add(session, event)
    return result


async def run_tx_collect(
    db: Database, fn: Callable[..., T], *args: Any
) -> tuple[T, list[EventBase]]:
    """Like :func:`run_tx`, but hand the events back instead of adding them (see GroupCommit)."""
    async with db.transaction() as session:
        events: list[EventBase] = []
        result: T = await session.run_sync(lambda s: fn(Tx(s, events), *args))
    return result, events
