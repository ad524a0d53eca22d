"""Alliances between two ecosystems of this deployment: their lifecycle.

An operator of ``a`` proposes an alliance to ``b`` with terms for both directions
(``terms[owner]``: what ``owner`` shares with and grants to the other side,
:class:`contracts.v1.alliances.DirectionTerms`). Then:

- **counter** (while proposed, either side): new terms; the countering side's offer is
  now the one on the table (``offered_by``);
- **accept** / **reject** (while proposed): only the side that did *not* make the offer
  on the table; rejected is final;
- **suspend** (while active, either side): nothing crosses until it is resumed;
- **resume** (while suspended): only the side that suspended it, so one side cannot undo
  the other's pause; the other side may end it instead;
- **end** (while proposed, active or suspended, either side): final; withdrawing a
  proposal is ending it.

At most one alliance of a pair is open (not rejected or ended) at a time. Every change,
in the caller's transaction: the row (version + 1), an audit row both operators read, an
identity audit event in each ecosystem, and an ``AllianceChanged`` event with the whole
state. Becoming active writes each side's token-exchange rules; leaving active removes
them and cuts off the tokens already exchanged across (:mod:`identity.domain.alliance_rules`).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from contracts.errors import ErrorCode
from contracts.v1.alliances import (
    AllianceChanged,
    AllianceState,
    AllianceStatus,
    DirectionTerms,
)
from identity.domain import alliance_rules
from identity.store import alliance_repository as arepo
from identity.store import repository as repo
from identity.store.alliance_models import Alliance, AllianceAudit
from identity.store.models import Ecosystem
from identity.store.transaction import Tx
from mesh.errors import MeshError, conflict, forbidden, not_found

P, A, S = AllianceStatus.PROPOSED, AllianceStatus.ACTIVE, AllianceStatus.SUSPENDED
# action -> (the statuses it starts from, the status it leads to)
MOVES: dict[str, tuple[frozenset[AllianceStatus], AllianceStatus]] = {
    "countered": (frozenset({P}), P),
    "accepted": (frozenset({P}), A),
    "rejected": (frozenset({P}), AllianceStatus.REJECTED),
    "suspended": (frozenset({A}), S),
    "resumed": (frozenset({S}), A),
    "ended": (frozenset({P, A, S}), AllianceStatus.ENDED),
}


@dataclass(frozen=True)
class AuditEntry:
    """One line of an alliance's audit trail."""

    at: datetime
    eco: str
    actor: str
    action: str
    status: str
    version: int
    terms: dict[str, Any]


@dataclass(frozen=True)
class Standing:
    """An alliance's state and who suspended it (the side that may resume it)."""

    state: AllianceState
    suspended_by: str | None

    def actions(self, eco: str) -> list[str]:
        """What ``eco``'s operators may do with it now."""
        st, status = self.state, self.state.status
        if status is P:
            answer = ["accept", "reject"] if st.offered_by != eco else []
            return ["counter", *answer, "end"]
        if status is A:
            return ["suspend", "end"]
        if status is S:
            return ["resume", "end"] if self.suspended_by in (None, eco) else ["end"]
        return []


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def _names(tx: Tx, row: Alliance) -> dict[str, str]:
    names = {}
    for eco in (row.eco_a, row.eco_b):
        e = repo.get_ecosystem(tx.s, eco)
        names[eco] = e.name if e is not None else eco
    return names


def standing(tx: Tx, row: Alliance) -> Standing:
    return Standing(state(tx, row), row.suspended_by)


def state(tx: Tx, row: Alliance) -> AllianceState:
    """The alliance as the contracts describe it."""
    return AllianceState(
        alliance=row.id,
        ecosystems=[row.eco_a, row.eco_b],
        names=_names(tx, row),
        status=AllianceStatus(row.status),
        version=row.version,
        offered_by=row.offered_by,
        terms={k: DirectionTerms.model_validate(v) for k, v in row.terms.items()},
        changed_at=row.changed_at,
        changed_by=row.changed_by,
        active_since=row.active_since,
    )


def _terms(
    eco: str, peer: str, given: Mapping[str, DirectionTerms], base: Mapping[str, Any]
) -> dict[str, Any]:
    """Terms for both sides: those given, else the ones held (``base``), else nothing shared."""
    strangers = sorted(set(given) - {eco, peer})
    if strangers:
        raise MeshError(
            ErrorCode.VALIDATION_FAILED,
            f"terms name only the alliance's two ecosystems ({eco}, {peer}), "
            f"not {', '.join(strangers)}",
        )
    return {
        side: (
            given[side] if side in given else DirectionTerms.model_validate(base.get(side, {}))
        ).model_dump(mode="json")
        for side in (eco, peer)
    }


def propose(
    tx: Tx, eco: str, peer: str, terms: Mapping[str, DirectionTerms], actor: str
) -> Standing:
    """``eco``'s operator offers ``peer`` an alliance on ``terms``."""
    if peer == eco:
        raise MeshError(ErrorCode.VALIDATION_FAILED, "an alliance joins two different ecosystems")
    other = repo.get_ecosystem(tx.s, peer)
    if other is None or other.disabled_at is not None:
        raise not_found(f"ecosystem {peer!r}")
    open_one = arepo.open_between(tx.s, eco, peer)
    if open_one is not None:
        raise _already(eco, peer, open_one)
    now = _now()
    row = Alliance(
        id=f"al-{secrets.token_hex(8)}",
        eco_a=eco,
        eco_b=peer,
        status=P.value,
        version=1,
        offered_by=eco,
        terms=_terms(eco, peer, terms, {}),
        changed_at=now,
        changed_by=actor,
        active_since=None,
        suspended_by=None,
        pair_key=arepo.pair_key(eco, peer),
        created_at=now,
    )
    if not arepo.insert(tx.s, row):
        raced = arepo.open_between(tx.s, eco, peer)
        raise _already(eco, peer, raced) if raced else conflict("the alliance could not be made")
    return _record(tx, row, eco, actor, "proposed")


def _already(eco: str, peer: str, row: Alliance) -> MeshError:
    return conflict(
        f"{eco} and {peer} already have an alliance ({row.id}, {row.status}); "
        "counter, accept or end that one instead"
    )


def _mine(tx: Tx, eco: str, alliance: str, lock: bool = False) -> Alliance:
    """The alliance, when ``eco`` is one of its two sides (else 404: no existence leak)."""
    row = arepo.get(tx.s, alliance, lock=lock)
    if row is None or eco not in (row.eco_a, row.eco_b):
        raise not_found("alliance")
    return row


def _move(tx: Tx, eco: str, alliance: str, action: str) -> Alliance:
    row = _mine(tx, eco, alliance, lock=True)
    starts, _ = MOVES[action]
    if AllianceStatus(row.status) not in starts:
        allowed = " or ".join(sorted(s.value for s in starts))
        raise conflict(
            f"the alliance is {row.status}: only an alliance that is {allowed} can be {action}"
        )
    return row


def counter(
    tx: Tx, eco: str, alliance: str, terms: Mapping[str, DirectionTerms], actor: str
) -> Standing:
    """New terms from either side; they become the offer on the table (``offered_by``)."""
    row = _move(tx, eco, alliance, "countered")
    peer = row.eco_b if eco == row.eco_a else row.eco_a
    row.terms = _terms(eco, peer, terms, row.terms)
    row.offered_by = eco
    return _record(tx, row, eco, actor, "countered")


def accept(tx: Tx, eco: str, alliance: str, actor: str) -> Standing:
    row = _answer(tx, eco, alliance, "accepted")
    row.active_since = _now()
    return _record(tx, row, eco, actor, "accepted")


def reject(tx: Tx, eco: str, alliance: str, actor: str) -> Standing:
    row = _answer(tx, eco, alliance, "rejected")
    row.pair_key = None
    return _record(tx, row, eco, actor, "rejected")


def _answer(tx: Tx, eco: str, alliance: str, action: str) -> Alliance:
    row = _move(tx, eco, alliance, action)
    if row.offered_by == eco:
        raise forbidden(
            f"the offer on the table is {eco}'s own: only the other side may accept or "
            "reject it (you may counter it or end it)"
        )
    return row


def suspend(tx: Tx, eco: str, alliance: str, actor: str) -> Standing:
    row = _move(tx, eco, alliance, "suspended")
    row.suspended_by = eco
    return _record(tx, row, eco, actor, "suspended")


def resume(tx: Tx, eco: str, alliance: str, actor: str) -> Standing:
    """Only the side that suspended an alliance resumes it."""
    row = _move(tx, eco, alliance, "resumed")
    if row.suspended_by not in (None, eco):
        raise forbidden(
            f"{row.suspended_by} suspended this alliance: only {row.suspended_by} may resume "
            "it (you may end it)"
        )
    row.suspended_by = None
    row.active_since = _now()
    return _record(tx, row, eco, actor, "resumed")


def end(tx: Tx, eco: str, alliance: str, actor: str) -> Standing:
    row = _move(tx, eco, alliance, "ended")
    row.pair_key = None
    row.suspended_by = None
    return _record(tx, row, eco, actor, "ended")


def agree(tx: Tx, eco: str, peer: str, terms: Mapping[str, DirectionTerms], actor: str) -> Standing:
    """Propose and accept at once, for a seed or a command run by the deployment (both
    operators agreed elsewhere): the audit trail shows both steps under ``actor``."""
    proposed = propose(tx, eco, peer, terms, actor)
    return accept(tx, peer, proposed.state.alliance, actor)


ACTIONS = {"accept": accept, "reject": reject, "suspend": suspend, "resume": resume, "end": end}


def _record(tx: Tx, row: Alliance, eco: str, actor: str, action: str) -> Standing:
    """Write the change and everything that goes with it, in this transaction."""
    before = None if action == "proposed" else row.status
    if action != "proposed":
        row.status = MOVES[action][1].value
        row.version += 1
    row.changed_at, row.changed_by = _now(), actor
    tx.s.flush()
    arepo.add_audit(
        tx.s,
        AllianceAudit(
            alliance=row.id,
            eco=eco,
            actor=actor,
            action=action,
            status=row.status,
            version=row.version,
            terms=row.terms,
            at=row.changed_at,
        ),
    )
    st = state(tx, row)
    for side in st.ecosystems:
        tx.audit(
            side,
            f"admin.alliance.{action}",
            actor=actor,
            target=row.id,
            by=eco,
            ally=st.other(side),
            status=row.status,
            version=row.version,
        )
    alliance_rules.apply(tx, row, st, was_active=before == A.value)
    tx.emit(AllianceChanged(ecosystem=row.eco_a, subject=row.id, data=st))
    return Standing(st, row.suspended_by)


def get(tx: Tx, eco: str, alliance: str) -> tuple[Standing, list[AuditEntry]]:
    """One alliance of ``eco`` with its audit trail, oldest first."""
    row = _mine(tx, eco, alliance)
    trail = [
        AuditEntry(
            at=_aware(a.at) or a.at,
            eco=a.eco,
            actor=a.actor,
            action=a.action,
            status=a.status,
            version=a.version,
            terms=a.terms,
        )
        for a in arepo.audit_trail(tx.s, row.id)
    ]
    return standing(tx, row), trail


def listing(tx: Tx, eco: str, status: AllianceStatus | None = None) -> list[Standing]:
    """The alliances ``eco`` is part of, whoever proposed them, the latest change first."""
    rows = arepo.involving(tx.s, eco, status.value if status else None)
    return [standing(tx, r) for r in rows]


def peers(tx: Tx, eco: str) -> list[Ecosystem]:
    """The enabled ecosystems other than ``eco``: those it may propose an alliance to."""
    return [e for e in repo.list_ecosystems(tx.s) if e.slug != eco and e.disabled_at is None]
