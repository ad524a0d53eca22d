"""Partnering workspaces: private spaces of people of two or more partner companies, with
threads, notes and tasks. Everyone who is not a member gets 404 for everything in them,
whatever their roles."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.v1 import collaboration_models as m
from contracts.v1.collaboration import WorkspaceMembershipChanged, WorkspaceMembershipData
from mesh.errors import bad_request, forbidden, not_found
from services.collaboration import allied, content, views
from services.collaboration import repository as repo
from services.collaboration import workspace_repository as wrepo
from services.collaboration.content import Place
from services.collaboration.models import MemberRow, NoteRow, PersonRow, TaskRow, WorkspaceRow
from services.collaboration.service import Deps, Who, new_id, now, touch, unique_match


async def resolve_person(s: AsyncSession, eco: str, ref: m.MemberRef) -> PersonRow:
    """A person of ``eco`` by subject id or unambiguous handle.

    Only people the service has met count (through their own token, their profile or
    an introduction), so their partner is known rather than claimed: a workspace's
    audience partners cannot be widened by naming someone who does not exist.
    """
    found = await repo.find_people(s, eco, [ref.person])
    sub = unique_match(found, ref.person)
    person = next((p for p in found if p.sub == sub), None)
    if person is None:
        raise not_found(f"person {ref.person!r}")
    if ref.partner and ref.partner != person.partner:
        raise bad_request(f"{ref.person} acts for another partner")
    return person


async def join(
    deps: Deps, s: AsyncSession, ws: WorkspaceRow, person: PersonRow, added_by: str
) -> None:
    """``person`` (of their ecosystem ``person.eco``, the workspace's or an allied one)
    becomes a member."""
    await repo.add(
        s,
        MemberRow(
            workspace=ws.id,
            person=person.sub,
            partner=person.partner,
            added_by=added_by,
            joined_at=now(),
            eco=person.eco,
        ),
    )
    await _membership_event(deps, s, ws, person.sub, person.partner, True, person.eco)


async def _membership_event(
    deps: Deps,
    s: AsyncSession,
    ws: WorkspaceRow,
    person: str,
    partner: str,
    joined: bool,
    eco: str | None = None,
) -> None:
    """Announced in the member's own ecosystem (its signals stay within it)."""
    data = WorkspaceMembershipData(workspace=ws.id, person=person, partner=partner, joined=joined)
    event = WorkspaceMembershipChanged(
        ecosystem=eco or ws.eco, partner=partner, subject=ws.id, data=data
    )
    await deps.outbox.add(s, event)


async def workspace_view(s: AsyncSession, ws: WorkspaceRow) -> m.WorkspaceView:
    members = await wrepo.members(s, [ws.id])
    ecos = {mb.person: allied.member_eco(ws, mb) for mb in members}
    names: dict[str, str] = {}
    for eco in set(ecos.values()):
        names |= await repo.people_names(s, eco, [p for p, e in ecos.items() if e == eco])
    across = len(set(ecos.values())) > 1
    return m.WorkspaceView(
        id=ws.id,
        title=ws.title,
        description=ws.description,
        created_by=ws.created_by,
        introduction=ws.introduction,
        partners=sorted({mb.partner for mb in members}),
        members=[
            m.MemberView(
                person=mb.person,
                partner=mb.partner,
                name=names.get(mb.person, ""),
                added_by=mb.added_by,
                joined_at=mb.joined_at,
                ecosystem=ecos[mb.person] if across else None,
            )
            for mb in members
        ],
        created_at=ws.created_at,
        direct=ws.direct is not None,
    )


class Workspaces:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    # ------------------------------------------------------------ the space and its members

    async def create(self, who: Who, req: m.CreateWorkspaceRequest) -> m.WorkspaceView:
        if not who.partner:
            raise forbidden("workspaces are opened by people acting for a partner company")
        async with self.deps.transaction() as s:
            await touch(self.deps, s, who)
            me = await repo.person(s, who.eco, who.sub)
            assert me is not None
            people = {who.sub: me}
            for ref in req.members:
                person = await resolve_person(s, req.eco, ref)
                people[person.sub] = person
            if len({p.partner for p in people.values()}) < 2:
                raise bad_request("a workspace joins people of two or more partner companies")
            ws = WorkspaceRow(
                id=new_id("w"),
                eco=req.eco,
                title=req.title,
                description=req.description,
                created_by=who.sub,
                introduction=None,
                created_at=now(),
            )
            await repo.add(s, ws)
            for person in people.values():
                await join(self.deps, s, ws, person, who.sub)
            return await workspace_view(s, ws)

    async def list(self, who: Who, req: m.EcoRequest) -> m.WorkspaceList:
        async with self.deps.transaction() as s:
            rows = await wrepo.workspaces_of(s, req.eco, who.sub)
            # a workspace across an alliance that is not active is closed to its allied members
            rows = [ws for ws in rows if await allied.allied(s, ws.eco, req.eco)]
            return m.WorkspaceList(items=[await workspace_view(s, ws) for ws in rows])

    async def get(self, who: Who, req: m.WorkspaceRequest) -> m.WorkspaceView:
        async with self.deps.transaction() as s:
            ws = await self._space(s, who, req)
            return await workspace_view(s, ws)

    async def add_member(self, who: Who, req: m.AddMemberRequest) -> m.WorkspaceView:
        async with self.deps.transaction() as s:
            ws = await self._space(s, who, req)
            if ws.direct is not None:
                raise bad_request(
                    "a direct conversation stays between its two people:"
                    " open a workspace to bring others in"
                )
            person = await resolve_person(s, req.eco, req)
            if not person.partner:
                raise bad_request("only people acting for a partner company can join")
            if await wrepo.member(s, ws.id, person.sub) is None:
                await join(self.deps, s, ws, person, who.sub)
            return await workspace_view(s, ws)

    async def remove_member(self, who: Who, req: m.RemoveMemberRequest) -> m.WorkspaceView:
        async with self.deps.transaction() as s:
            ws = await self._space(s, who, req)
            member = await wrepo.member(s, ws.id, req.person)
            if member is None:
                raise not_found("member")
            if req.person != who.sub and who.sub != ws.created_by:
                raise forbidden("only its creator removes others; anyone may leave")
            await wrepo.remove_member(s, ws.id, req.person)
            await _membership_event(
                self.deps, s, ws, member.person, member.partner, False, member.eco
            )
            if req.person == who.sub:
                return m.WorkspaceView(
                    id=ws.id,
                    title=ws.title,
                    description=ws.description,
                    created_by=ws.created_by,
                    introduction=ws.introduction,
                    partners=[],
                    members=[],
                    created_at=ws.created_at,
                    direct=ws.direct is not None,
                )
            return await workspace_view(s, ws)

    # ------------------------------------------------------------ threads

    async def list_threads(self, who: Who, req: m.WsListThreadsRequest) -> m.ThreadList:
        async with self.deps.transaction() as s:
            await content.workspace_place(s, who, req.eco, req.workspace)
            where = repo.in_workspace(req.workspace)
            rows = await repo.threads(s, where, None, req.limit, req.offset)
            return await views.thread_list(s, rows, req.limit, req.offset)

    async def create_thread(self, who: Who, req: m.WsCreateThreadRequest) -> m.ThreadView:
        async with self.deps.transaction() as s:
            place = await content.workspace_place(s, who, req.eco, req.workspace)
            name = await touch(self.deps, s, who)
            row = await content.create_thread(
                self.deps, s, who, place, None, req.title, req.body, req.mentions
            )
            return views.new_thread_view(row, name)

    async def get_thread(self, who: Who, req: m.WsThreadRequest) -> m.ThreadView:
        async with self.deps.transaction() as s:
            place = await content.workspace_place(s, who, req.eco, req.workspace)
            row = await content.workspace_thread(s, place, req.thread)
            return await views.thread_view(s, who, row, req.limit, req.offset)

    async def edit_thread(self, who: Who, req: m.WsEditThreadRequest) -> m.ThreadView:
        async with self.deps.transaction() as s:
            place = await content.workspace_place(s, who, req.eco, req.workspace)
            row = await content.workspace_thread(s, place, req.thread)
            content.require_author(row, who)
            await content.edit(self.deps, s, who, row, "thread", place, req)
            return await views.thread_view(s, who, row)

    async def create_post(self, who: Who, req: m.WsCreatePostRequest) -> m.PostView:
        async with self.deps.transaction() as s:
            place = await content.workspace_place(s, who, req.eco, req.workspace)
            thread = await content.workspace_thread(s, place, req.thread)
            name = await touch(self.deps, s, who)
            row = await content.create_post(
                self.deps, s, who, thread, place, req.body, req.mentions
            )
            return views.new_post_view(row, name)

    # ------------------------------------------------------------ notes

    async def create_note(self, who: Who, req: m.CreateNoteRequest) -> m.NoteView:
        async with self.deps.transaction() as s:
            place = await content.workspace_place(s, who, req.eco, req.workspace)
            row = await content.create_note(
                self.deps, s, who, place, req.title, req.body, req.mentions
            )
            return m.NoteView.model_validate(row, from_attributes=True)

    async def list_notes(self, who: Who, req: m.WorkspaceRequest) -> m.NoteList:
        async with self.deps.transaction() as s:
            await content.workspace_place(s, who, req.eco, req.workspace)
            rows = await wrepo.notes(s, req.workspace)
        return m.NoteList(items=[m.NoteView.model_validate(r, from_attributes=True) for r in rows])

    async def get_note(self, who: Who, req: m.NoteRequest) -> m.NoteView:
        async with self.deps.transaction() as s:
            place = await content.workspace_place(s, who, req.eco, req.workspace)
            row = await self._note(s, place, req.note)
            return m.NoteView.model_validate(row, from_attributes=True)

    async def edit_note(self, who: Who, req: m.EditNoteRequest) -> m.NoteView:
        async with self.deps.transaction() as s:
            place = await content.workspace_place(s, who, req.eco, req.workspace)
            row = await self._note(s, place, req.note)
            await content.edit(self.deps, s, who, row, "note", place, req)
            return m.NoteView.model_validate(row, from_attributes=True)

    async def note_history(self, who: Who, req: m.NoteRequest) -> m.History:
        async with self.deps.transaction() as s:
            place = await content.workspace_place(s, who, req.eco, req.workspace)
            row = await self._note(s, place, req.note)
            return await views.history(s, row.id, "note")

    # ------------------------------------------------------------ tasks

    async def create_task(self, who: Who, req: m.CreateTaskRequest) -> m.TaskView:
        async with self.deps.transaction() as s:
            place = await content.workspace_place(s, who, req.eco, req.workspace)
            assignee = await self._assignee(s, place, req.eco, req.assignee)
            stamp = now()
            row = TaskRow(
                id=new_id("k"),
                workspace=req.workspace,
                title=req.title,
                status="open",
                assignee=assignee,
                due=req.due,
                created_by=who.sub,
                created_at=stamp,
                updated_at=stamp,
            )
            await repo.add(s, row)
            return m.TaskView.model_validate(row, from_attributes=True)

    async def list_tasks(self, who: Who, req: m.ListTasksRequest) -> m.TaskList:
        async with self.deps.transaction() as s:
            await content.workspace_place(s, who, req.eco, req.workspace)
            rows = await wrepo.tasks(s, req.workspace, req.status)
        return m.TaskList(items=[m.TaskView.model_validate(r, from_attributes=True) for r in rows])

    async def update_task(self, who: Who, req: m.TaskRequest) -> m.TaskView:
        async with self.deps.transaction() as s:
            place = await content.workspace_place(s, who, req.eco, req.workspace)
            row = await wrepo.task(s, req.workspace, req.task)
            if row is None:
                raise not_found("task")
            changes = req.model_dump(include={"title", "status", "due"}, exclude_none=True)
            if req.assignee is not None:
                changes["assignee"] = await self._assignee(s, place, req.eco, req.assignee)
            await repo.set_flags(s, row, **changes, updated_at=now())
            return m.TaskView.model_validate(row, from_attributes=True)

    # ------------------------------------------------------------ helpers

    @staticmethod
    async def _space(s: AsyncSession, who: Who, req: m.WorkspaceRequest) -> WorkspaceRow:
        await content.workspace_place(s, who, req.eco, req.workspace)
        ws = await wrepo.workspace_by_id(s, req.workspace)
        assert ws is not None
        return ws

    @staticmethod
    async def _note(s: AsyncSession, place: Place, note_id: str) -> NoteRow:
        assert place.workspace is not None
        row = await wrepo.note(s, place.workspace, note_id)
        if row is None:
            raise not_found("note")
        return row

    @staticmethod
    async def _assignee(s: AsyncSession, place: Place, eco: str, ref: str | None) -> str | None:
        if not ref:
            return None
        found = [p.sub for p in await repo.find_people(s, eco, [ref]) if p.sub in place.members]
        if ref in place.members:
            return ref
        if not found:
            raise bad_request("tasks are assigned to members of the workspace")
        return found[0]
