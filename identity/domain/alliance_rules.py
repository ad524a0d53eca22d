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

from datetime import UTC
from typing import Any

from contracts.v1.alliances import AllianceState, AllianceStatus
from identity.domain import revocation
from identity.store import alliance_repository as arepo
from identity.store import repository as repo
from identity.store.alliance_models import Alliance
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


def apply(tx: Tx, alliance: Alliance, st: AllianceState, was_active: bool) -> None:
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
        # after every iat issued across it: this second's, and the floor's (a second ahead)
        before = max(revocation.cut_off_time(), _floor(tx, alliance) + 1)
        alliance.cut_before = before
        tx.s.flush()
        for owner in st.ecosystems:
            revocation.cut_off_origin(tx, owner, st.other(owner), reason, before)


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


def issue_floor(tx: Tx, alliance: str) -> int | None:
    """None unless the alliance is active now (read in the caller's transaction, whatever
    was cached); else the earliest ``iat`` a token exchanged across it may carry."""
    row = arepo.get(tx.s, alliance)
    if row is None or row.status != AllianceStatus.ACTIVE.value:
        return None
    return _floor(tx, row)


def _floor(tx: Tx, row: Alliance) -> int:
    """``iat`` is in whole seconds and a cut-off refuses ``iat < before``: a token exchanged
    after the pair's last cut-off (an earlier suspension or end, maybe in this very second)
    carries at least its ``before``, and at least the second after it became active."""
    since = row.active_since or row.changed_at
    since = since if since.tzinfo else since.replace(tzinfo=UTC)
    last_cut = arepo.last_cut_before(tx.s, row.eco_a, row.eco_b) or 0
    return max(int(since.timestamp()) + 1, last_cut)


def cut_off(tx: Tx, eco: str, claims: dict[str, Any]) -> bool:
    """Was this token of ``eco``, exchanged from an ally, issued before the pair's last
    cut-off (what resource servers refuse, :mod:`mesh.revocation`)?"""
    fed = claims.get("fed")
    if not isinstance(fed, dict) or not isinstance(fed.get("eco"), str):
        return False
    last = arepo.last_cut_before(tx.s, eco, fed["eco"])
    return last is not None and int(claims.get("iat", 0)) < last
