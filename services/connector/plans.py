"""What an invocation reads of the registry (operation, grants, back-end target, allow-list),
kept for a short while so that a call does not pay four queries and a transaction.

Safety: an entry is dropped at once when this process commits any change to a back-end,
an operation, a grant, the allow-list, a vault secret or an alliance (SQLAlchemy session
events on this connector's engine), and an entry loaded before such a commit is never
stored. A grant across an alliance is never served on the entry alone: every call across
reads the alliance in the database (:mod:`services.connector.alliances`), so another
replica's entry cannot let a call through after the alliance ended either.
Changes committed by another replica apply here within ``plan_cache_ttl_s`` (the
entry's lifetime); ``plan_cache_ttl_s = 0`` turns the cache off (every call reads the
database). The grant check itself still runs on every call, on the entry's grants; rate
limits and idempotency keys are read in the database on every call that has them.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session

from mesh.alliances import TABLE as ALLIANCES
from services.connector.invoker import Target
from services.connector.models import Allowed, Backend, Grant, OperationRow, VaultSecret

REGISTRY = (Allowed, Backend, Grant, OperationRow, VaultSecret)
_TABLES = frozenset(
    [*(m.__table__.name for m in REGISTRY), ALLIANCES]  # type: ignore[attr-defined]
)
_CHANGED = "connector.registry_changed"


@dataclass(frozen=True)
class Snapshot:
    """The registry as one invocation sees it; ``op`` None: no such operation."""

    op: OperationRow | None
    grants: tuple[Grant, ...]
    target: Target | None
    allowlist: tuple[str, ...]


class PlanCache:
    """Snapshots per (ecosystem, operation), dropped on any committed registry change."""

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self.generation = 0
        self._entries: dict[tuple[str, str], tuple[float, Snapshot]] = {}
        self._listeners: list[tuple[str, Callable[..., None]]] = []

    @property
    def enabled(self) -> bool:
        return self.ttl_s > 0

    def invalidate(self) -> None:
        self.generation += 1
        self._entries.clear()

    async def get(
        self, eco: str, op_id: str, load: Callable[[], Awaitable[Snapshot]]
    ) -> tuple[Snapshot, bool]:
        """The snapshot of ``op_id`` and whether it was loaded now (not from the cache)."""
        key = (eco, op_id)
        found = self._entries.get(key)
        if found is not None and found[0] > time.monotonic():
            return found[1], False
        generation = self.generation
        snap = await load()
        if self.enabled and generation == self.generation:
            self._entries[key] = (time.monotonic() + self.ttl_s, snap)
        return snap, True

    def watch(self, sync_engine: Any) -> None:
        """Invalidate after every commit, on ``sync_engine``, that changed the registry."""

        # Listeners are on the Session class, shared by every connector in the process
        # (tests run several): each cache marks and reads a flag of its own.
        flag = (_CHANGED, id(self))

        def mine(session: Session) -> bool:
            return session.bind is sync_engine

        def after_flush(session: Session, _ctx: Any) -> None:
            if mine(session) and any(
                isinstance(o, REGISTRY) for o in (*session.new, *session.dirty, *session.deleted)
            ):
                session.info[flag] = True

        def on_execute(state: ORMExecuteState) -> None:
            if not (state.is_update or state.is_delete or state.is_insert):
                return
            table = getattr(state.statement, "table", None)
            if mine(state.session) and getattr(table, "name", None) in _TABLES:
                state.session.info[flag] = True

        def after_commit(session: Session) -> None:
            if session.info.pop(flag, False):
                self.invalidate()

        self._listeners = [
            ("after_flush", after_flush),
            ("do_orm_execute", on_execute),
            ("after_commit", after_commit),
        ]
        for name, fn in self._listeners:
            event.listen(Session, name, fn)

    def unwatch(self) -> None:
        for name, fn in self._listeners:
            event.remove(Session, name, fn)
        self._listeners = []
