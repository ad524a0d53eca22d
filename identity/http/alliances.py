"""Alliances over HTTP: the operators' routes under ``{iss}/admin/alliances`` and the
members' read-only list of their ecosystem's active allies at ``{iss}/alliances``.

Operators (role ``operator``, scope ``admin``, a token of the ecosystem's own issuer)
see every alliance their ecosystem is part of, whichever side proposed it; an alliance
the caller's ecosystem is not part of is 404. A change in the wrong state is 409, by
the wrong side 403 (:mod:`identity.domain.alliances` says who may do what).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from contracts.errors import ErrorCode
from contracts.timestamps import Timestamp
from contracts.v1.alliances import AllianceState, AllianceStatus, DirectionTerms, EcoId
from identity.domain import alliance_rules, alliances
from identity.domain.alliances import AuditEntry, Standing
from identity.http.admin import _admin, caller_claims
from identity.http.runtime import IdentityRuntime, RuntimeDep
from identity.store.transaction import Tx
from mesh.errors import MeshError
from mesh.tokens import bearer

router = APIRouter(prefix="/eco/{eco}", tags=["alliances"])

Terms = Annotated[
    dict[EcoId, DirectionTerms],
    Field(
        max_length=2,
        description="per owner ecosystem (this one and the peer): what it shares with and "
        "grants to the other; a side left out keeps its current terms (nothing shared, "
        "when proposing)",
    ),
]


class ProposeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    peer: EcoId = Field(description="the ecosystem offered the alliance")
    terms: Terms = Field(default_factory=dict)


class CounterIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    terms: Terms


class AllianceView(AllianceState):
    """An alliance seen by one of its two ecosystems."""

    ally: str = Field(description="the other ecosystem")
    ally_name: str
    suspended_by: str | None = Field(
        default=None, description="the side that suspended it: it alone may resume it"
    )
    actions: list[str] = Field(
        description="what this ecosystem's operators may do now: counter, accept, reject, "
        "suspend, resume, end"
    )


class AllianceAuditEntry(BaseModel):
    at: Timestamp
    eco: str = Field(description="the side that acted")
    actor: str = Field(description="the operator (sub)")
    action: str = Field(description="proposed, countered, accepted, rejected, suspended, …")
    status: AllianceStatus = Field(description="the alliance's status after the change")
    version: int
    terms: dict[str, DirectionTerms] = Field(description="the terms as the change left them")


class AllianceDetail(AllianceView):
    audit: list[AllianceAuditEntry] = Field(description="every change, oldest first")


class AllyView(BaseModel):
    """An active ally of the caller's ecosystem, for its members."""

    alliance: str
    ecosystem: str = Field(description="the allied ecosystem")
    name: str = Field(description="its display name (brand)")
    since: Timestamp | None = Field(description="active since")
    shares: DirectionTerms = Field(description="what the ally shares with this ecosystem")
    receives: DirectionTerms = Field(description="what this ecosystem shares with the ally")


class AlliesView(BaseModel):
    ecosystem: str
    allies: list[AllyView]


def _view(eco: str, s: Standing) -> AllianceView:
    st = s.state
    ally = st.other(eco)
    return AllianceView(
        **st.model_dump(),
        ally=ally,
        ally_name=st.name_of(ally),
        suspended_by=s.suspended_by,
        actions=s.actions(eco),
    )


def _entry(a: AuditEntry) -> AllianceAuditEntry:
    return AllianceAuditEntry(
        at=a.at,
        eco=a.eco,
        actor=a.actor,
        action=a.action,
        status=AllianceStatus(a.status),
        version=a.version,
        terms={k: DirectionTerms.model_validate(v) for k, v in a.terms.items()},
    )


async def _change(
    request: Request, rt: IdentityRuntime, eco: str, fn: Callable[[Tx, str], Standing]
) -> AllianceView:
    """An operator's change: the alliance seen from ``eco`` afterwards."""
    standing = await _admin(request, rt, eco, fn)
    rt.rows.forget(standing.state.other(eco))  # the ally's exchange rules may have changed
    return _view(eco, standing)


@router.get("/admin/alliances")
async def list_alliances(
    request: Request, eco: str, rt: RuntimeDep, status: AllianceStatus | None = None
) -> list[AllianceView]:
    """Every alliance of this ecosystem (either side proposed it), latest change first."""

    def work(tx: Tx, _actor: str) -> list[AllianceView]:
        return [_view(eco, s) for s in alliances.listing(tx, eco, status)]

    return await _admin(request, rt, eco, work)


@router.post("/admin/alliances", status_code=201)
async def propose(request: Request, eco: str, body: ProposeIn, rt: RuntimeDep) -> AllianceView:
    def work(tx: Tx, actor: str) -> Standing:
        return alliances.propose(tx, eco, body.peer, body.terms, actor)

    return await _change(request, rt, eco, work)


class PeerView(BaseModel):
    ecosystem: str
    name: str


@router.get("/admin/alliances/peers")
async def peers(request: Request, eco: str, rt: RuntimeDep) -> list[PeerView]:
    """The other ecosystems of this deployment an alliance may be proposed to (enabled
    ones, by slug): what the proposal form offers."""

    def work(tx: Tx, _actor: str) -> list[PeerView]:
        return [PeerView(ecosystem=e.slug, name=e.name) for e in alliances.peers(tx, eco)]

    return await _admin(request, rt, eco, work)


@router.get("/admin/alliances/{alliance}")
async def get_alliance(request: Request, eco: str, alliance: str, rt: RuntimeDep) -> AllianceDetail:
    def work(tx: Tx, _actor: str) -> AllianceDetail:
        standing, trail = alliances.get(tx, eco, alliance)
        view = _view(eco, standing)
        return AllianceDetail(**view.model_dump(), audit=[_entry(a) for a in trail])

    return await _admin(request, rt, eco, work)


@router.post("/admin/alliances/{alliance}/counter")
async def counter(
    request: Request, eco: str, alliance: str, body: CounterIn, rt: RuntimeDep
) -> AllianceView:
    def work(tx: Tx, actor: str) -> Standing:
        return alliances.counter(tx, eco, alliance, body.terms, actor)

    return await _change(request, rt, eco, work)


def _action_route(action: str) -> None:
    fn = alliances.ACTIONS[action]

    async def act(request: Request, eco: str, alliance: str, rt: RuntimeDep) -> AllianceView:
        return await _change(request, rt, eco, lambda tx, actor: fn(tx, eco, alliance, actor))

    act.__name__ = f"{action}_alliance"
    act.__doc__ = {
        "accept": "Accept the offer on the table (the side that did not make it).",
        "reject": "Reject the offer on the table (the side that did not make it); final.",
        "suspend": "Pause an active alliance (either side): its exchanged tokens are cut off.",
        "resume": "Resume a suspended alliance (the side that suspended it).",
        "end": "End or withdraw the alliance (either side); final.",
    }[action]
    router.add_api_route(
        f"/admin/alliances/{{alliance}}/{action}", act, methods=["POST"], name=act.__name__
    )


for _action in alliances.ACTIONS:
    _action_route(_action)


@router.get("/alliances")
async def allies(request: Request, eco: str, rt: RuntimeDep) -> AlliesView:
    """The ecosystem's active allies and what each side shares: any valid access token of
    this ecosystem (a member, a back-end, one exchanged from an ally and not cut off) may
    read it."""
    token = bearer(request.headers.get("authorization"))

    def work(tx: Tx) -> AlliesView:
        if alliance_rules.cut_off(tx, eco, caller_claims(rt, tx, eco, token)):
            raise MeshError(ErrorCode.UNAUTHENTICATED, "the access token has been revoked")
        listed = []
        for s in alliances.listing(tx, eco, AllianceStatus.ACTIVE):
            st = s.state
            ally = st.other(eco)
            listed.append(
                AllyView(
                    alliance=st.alliance,
                    ecosystem=ally,
                    name=st.name_of(ally),
                    since=st.active_since,
                    shares=st.shared_by(ally),
                    receives=st.shared_by(eco),
                )
            )
        return AlliesView(ecosystem=eco, allies=sorted(listed, key=lambda a: a.ecosystem))

    return await rt.tx(work)
