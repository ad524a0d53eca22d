"""What an alliance changes in token exchange: rules while it is active, cut-offs when it
stops being active.

While an alliance of ``a`` and ``b`` is active, each ecosystem holds one exchange rule
tagged with the alliance's id (:func:`rule`): clients of the other ecosystem may exchange
the other ecosystem's tokens at this ecosystem's token endpoint, and the token they get
carries the roles and at most the scopes of this ecosystem's terms
(``terms[this].roles/scopes``), a ``fed`` claim naming where it came from, and no
partner of this ecosystem. When the alliance is suspended or ended the rules go, and a
``token_revoked`` event per side cuts off every token of that ecosystem exchanged from
the other one (``RevokedSubject.origin``) issued up to then.

Rules tagged with an alliance are the alliance's: an operator's ``PUT …/exchange-rules``
keeps them as they are (:func:`keep_alliance_rules`).
"""

from __future__ import annotations

from typing import Any

from contracts.v1.alliances import AllianceState, AllianceStatus
from identity.domain import revocation
from identity.store import alliance_repository as arepo
from identity.store import repository as repo
from identity.store.transaction import Tx

TAG = "alliance"
CLIENT_ECOSYSTEM = "client_ecosystem"
ANY_CLIENT = "*"


def rule(st: AllianceState, owner: str) -> dict[str, Any]:
    """The exchange rule of ``owner`` that lets the other side's tokens in."""
    other, terms = st.other(owner), st.shared_by(owner)
    return {
        TAG: st.alliance,
        "client": ANY_CLIENT,
        CLIENT_ECOSYSTEM: other,
        "from_ecosystems": [other],
        "subject_clients": "*",
        "roles": list(terms.roles),
        "scopes": sorted(str(s) for s in terms.scopes),
    }


def _without(rules: list[dict[str, Any]], alliance: str) -> list[dict[str, Any]]:
    return [r for r in rules if r.get(TAG) != alliance]


def apply(tx: Tx, st: AllianceState, was_active: bool) -> None:
    """Bring both ecosystems' rules in line with ``st``; cut off on leaving active."""
    for owner in st.ecosystems:
        row = repo.get_ecosystem(tx.s, owner)
        if row is None:
            continue
        rules = _without(list(row.exchange_rules or []), st.alliance)
        if st.active:
            rules.append(rule(st, owner))
        if rules != (row.exchange_rules or []):
            row.exchange_rules = rules
    tx.s.flush()
    if was_active and not st.active:
        suspended = st.status is AllianceStatus.SUSPENDED
        reason: revocation.Reason = "alliance_suspended" if suspended else "alliance_ended"
        for owner in st.ecosystems:
            revocation.cut_off_origin(tx, owner, st.other(owner), reason)


def keep_alliance_rules(
    current: list[dict[str, Any]], given: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """An operator's new rules, with the alliances' rules kept as they are (a rule given
    with an alliance tag, e.g. read back from the ecosystem's settings, is dropped: the
    alliance decides it)."""
    mine = [r for r in given if TAG not in r and CLIENT_ECOSYSTEM not in r]
    return mine + [r for r in current if TAG in r]


def is_alliance_rule(r: dict[str, Any]) -> bool:
    return isinstance(r.get(TAG), str) and isinstance(r.get(CLIENT_ECOSYSTEM), str)


def active(tx: Tx, alliance: str) -> bool:
    """Is the alliance active now (read in the caller's transaction, whatever was cached)?"""
    return arepo.status_of(tx.s, alliance) == AllianceStatus.ACTIVE.value
