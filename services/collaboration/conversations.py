"""Direct conversations: the one private workspace of two people, opened from a hover card or
a profile. Colleagues of one company and people an accepted introduction connected may talk;
opening it again returns the same workspace. Like every workspace, only its members read it."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.v1 import collaboration_models as m
from mesh.errors import bad_request, forbidden
from services.collaboration import repository as repo
from services.collaboration import workspace_repository as wrepo
from services.collaboration.models import PersonRow, WorkspaceRow
from services.collaboration.service import Deps, Who, new_id, now, touch
from services.collaboration.workspaces import join, resolve_person, workspace_view


def pair_key(a: str, b: str) -> str:
    """One key per pair, whoever opens it (subject ids hold no spaces)."""
    return " ".join(sorted((a, b)))


async def may_talk(s: AsyncSession, eco: str, me: PersonRow, other: PersonRow) -> bool:
    if me.partner and me.partner == other.partner:
        return True
    return await wrepo.introduced(s, eco, me.sub, other.sub)


async def open_direct(deps: Deps, who: Who, req: m.DirectConversationRequest) -> m.WorkspaceView:
    if not who.partner:
        raise forbidden("direct conversations are between people acting for a partner company")
    async with deps.transaction() as s:
        await touch(deps, s, who)
        me = await repo.person(s, who.eco, who.sub)
        assert me is not None
        other = await resolve_person(s, req.eco, m.MemberRef(person=req.person))
        if other.sub == me.sub:
            raise bad_request("a conversation needs someone else: pick another person")
        if not other.partner:
            raise forbidden(f"{other.name or other.sub} does not act for a partner company")
        ws = await wrepo.by_direct(s, req.eco, pair_key(me.sub, other.sub))
        if ws is None:
            if not await may_talk(s, req.eco, me, other):
                raise forbidden(
                    f"you and {other.name or other.sub} are not connected yet: you can message"
                    " people of your own company and people an accepted introduction connected"
                    " you with; ask a broker to introduce you"
                )
            ws = await _create(deps, s, me, other)
        elif await wrepo.member(s, ws.id, me.sub) is None:
            await join(deps, s, ws, me, me.sub)  # one who left comes back to the same one
        return await workspace_view(s, ws)


async def _create(deps: Deps, s: AsyncSession, me: PersonRow, other: PersonRow) -> WorkspaceRow:
    ws = WorkspaceRow(
        id=new_id("w"),
        eco=me.eco,
        title=f"{me.name or me.sub} and {other.name or other.sub}"[:200],
        description="A direct conversation.",
        created_by=me.sub,
        introduction=None,
        direct=pair_key(me.sub, other.sub),
        created_at=now(),
    )
    await repo.add(s, ws)
    for person in (me, other):
        await join(deps, s, ws, person, me.sub)
    return ws
