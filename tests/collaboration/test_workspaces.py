"""Partnering workspaces: members only, 404 for everyone else whatever their roles."""

from __future__ import annotations

from typing import Any

import pytest

from contracts.errors import ErrorCode
from contracts.v1 import collaboration as c
from tests.collaboration.conftest import Mesh
from tests.collaboration.test_forums import denied, seed_category

OUTSIDERS = ("noah", "chloe", "fatima", "olivia", "bruno")  # same partners, others, roles


async def meet(mesh: Mesh, *people: str) -> None:
    """Make people known to the service the way it learns them: by their writing."""
    await seed_category(mesh, "introductions")
    for who in people:
        await mesh.call(c.CREATE_THREAD, who, category="introductions", title="Hello", body="hi")


async def open_space(mesh: Mesh) -> tuple[Any, Any, Any, Any, Any]:
    await meet(mesh, "carlos", "fatima")
    ws = await mesh.call(
        c.CREATE_WORKSPACE, "nadia", title="Rotterdam lane", members=[{"person": "carlos"}]
    )
    thread = await mesh.call(c.WS_CREATE_THREAD, "nadia", workspace=ws.id, title="Plan", body="b")
    post = await mesh.call(c.WS_CREATE_POST, "carlos", workspace=ws.id, thread=thread.id, body="ok")
    note = await mesh.call(c.CREATE_NOTE, "carlos", workspace=ws.id, title="Terms", body="net 30")
    task = await mesh.call(
        c.CREATE_TASK, "nadia", workspace=ws.id, title="Quote", assignee="carlos"
    )
    return ws, thread, post, note, task


class TestMembersOnly:
    async def test_members_see_and_write(self, mesh: Mesh) -> None:
        ws, thread, post, note, task = await open_space(mesh)
        assert ws.partners == ["contoso", "northwind"]
        assert [m.person for m in ws.members] == ["nadia", "carlos"]
        for who in ("nadia", "carlos"):
            assert [w.id for w in (await mesh.call(c.LIST_WORKSPACES, who)).items] == [ws.id]
            seen = await mesh.call(c.WS_GET_THREAD, who, workspace=ws.id, thread=thread.id)
            assert [p.id for p in seen.posts] == [post.id]
            notes = await mesh.call(c.LIST_NOTES, who, workspace=ws.id)
            assert [n.id for n in notes.items] == [note.id]
            tasks = await mesh.call(c.LIST_TASKS, who, workspace=ws.id)
            assert [(t.id, t.assignee) for t in tasks.items] == [(task.id, "carlos")]
        done = await mesh.call(
            c.UPDATE_TASK, "carlos", workspace=ws.id, task=task.id, status="done"
        )
        assert done.status == "done"

    async def test_everything_is_404_to_non_members(self, mesh: Mesh) -> None:
        ws, thread, post, note, task = await open_space(mesh)
        w = {"workspace": ws.id}
        calls = [
            (c.GET_WORKSPACE, w),
            (c.ADD_MEMBER, {**w, "person": "noah"}),
            (c.REMOVE_MEMBER, {**w, "person": "carlos"}),
            (c.WS_LIST_THREADS, w),
            (c.WS_CREATE_THREAD, {**w, "title": "t", "body": "b"}),
            (c.WS_GET_THREAD, {**w, "thread": thread.id}),
            (c.WS_EDIT_THREAD, {**w, "thread": thread.id, "body": "x"}),
            (c.WS_CREATE_POST, {**w, "thread": thread.id, "body": "x"}),
            (c.CREATE_NOTE, {**w, "title": "t", "body": "b"}),
            (c.LIST_NOTES, w),
            (c.GET_NOTE, {**w, "note": note.id}),
            (c.EDIT_NOTE, {**w, "note": note.id, "body": "x"}),
            (c.NOTE_HISTORY, {**w, "note": note.id}),
            (c.CREATE_TASK, {**w, "title": "t"}),
            (c.LIST_TASKS, w),
            (c.UPDATE_TASK, {**w, "task": task.id, "status": "done"}),
            (c.EDIT_POST, {"post": post.id, "body": "x"}),
            (c.POST_HISTORY, {"post": post.id}),
            (c.AGREE_POST, {"post": post.id}),
            (c.HIDE_POST, {"post": post.id}),
            # forum routes do not serve workspace threads either
            (c.GET_THREAD, {"thread": thread.id}),
            (c.CREATE_POST, {"thread": thread.id, "body": "x"}),
            (c.HIDE_THREAD, {"thread": thread.id}),
        ]
        for who in OUTSIDERS:
            assert (await mesh.call(c.LIST_WORKSPACES, who)).items == []
            for op, fields in calls:
                if op in (c.HIDE_POST, c.HIDE_THREAD) and who not in ("olivia", "bruno"):
                    continue  # refused by role before any lookup
                err = await denied(ErrorCode.NOT_FOUND, mesh.call(op, who, **fields))
                assert ws.id not in err.detail
        # nothing changed for the members
        again = await mesh.call(c.GET_WORKSPACE, "nadia", workspace=ws.id)
        assert [m.person for m in again.members] == ["nadia", "carlos"]
        assert (await mesh.call(c.GET_NOTE, "carlos", workspace=ws.id, note=note.id)).version == 1

    async def test_missing_and_foreign_workspace_answer_alike(self, mesh: Mesh) -> None:
        ws, *_ = await open_space(mesh)
        missing = await denied(
            ErrorCode.NOT_FOUND, mesh.call(c.GET_WORKSPACE, "noah", workspace="w_x")
        )
        hidden = await denied(
            ErrorCode.NOT_FOUND, mesh.call(c.GET_WORKSPACE, "noah", workspace=ws.id)
        )
        assert missing.detail == hidden.detail
        other_eco = mesh.token("nadia", eco="globex")
        await denied(
            ErrorCode.NOT_FOUND,
            mesh.call_as(c.GET_WORKSPACE, other_eco, eco="globex", workspace=ws.id),
        )

    async def test_mentions_reach_members_only(self, mesh: Mesh) -> None:
        ws, thread, *_ = await open_space(mesh)
        post = await mesh.call(
            c.WS_CREATE_POST,
            "nadia",
            workspace=ws.id,
            thread=thread.id,
            body="@carlos and @fatima, see this",
            mentions=["noah"],
        )
        assert post.mentions == ["carlos"]
        assert (await mesh.call(c.LIST_NOTIFICATIONS, "carlos")).unread == 1
        for who in ("fatima", "noah"):
            assert (await mesh.call(c.LIST_NOTIFICATIONS, who)).items == []
        # a member who leaves no longer sees notifications about the space
        await mesh.call(c.REMOVE_MEMBER, "carlos", workspace=ws.id, person="carlos")
        assert (await mesh.call(c.LIST_NOTIFICATIONS, "carlos")).items == []
        await denied(ErrorCode.NOT_FOUND, mesh.call(c.GET_WORKSPACE, "carlos", workspace=ws.id))


class TestMembership:
    async def test_needs_two_partner_companies(self, mesh: Mesh) -> None:
        await meet(mesh, "noah", "carlos")
        await denied(
            ErrorCode.BAD_REQUEST,
            mesh.call(c.CREATE_WORKSPACE, "nadia", title="Alone", members=[{"person": "noah"}]),
        )
        assert (await mesh.call(c.LIST_WORKSPACES, "nadia")).items == []
        assert await mesh.events() != []  # the forum threads, but no membership
        assert all(
            e.type != "pm.v1.collaboration.workspace_membership" for e in await mesh.events()
        )

    async def test_unknown_people_cannot_be_added(self, mesh: Mesh) -> None:
        # naming a partner for them does not help: it would widen the audience on a claim
        for member in ({"person": "ghost"}, {"person": "ghost", "partner": "contoso"}):
            await denied(
                ErrorCode.NOT_FOUND,
                mesh.call(c.CREATE_WORKSPACE, "nadia", title="W", members=[member]),
            )
        assert (await mesh.call(c.LIST_WORKSPACES, "nadia")).items == []

    async def test_ambiguous_handle_is_refused(self, mesh: Mesh) -> None:
        await seed_category(mesh, "introductions")
        for who in ("carlos", "fatima"):
            token = mesh.token(who, preferred_username="pat")
            await mesh.call_as(
                c.CREATE_THREAD, token, category="introductions", title="Hi", body="x"
            )
        await denied(
            ErrorCode.NOT_FOUND,
            mesh.call(c.CREATE_WORKSPACE, "nadia", title="W", members=[{"person": "pat"}]),
        )
        ws = await mesh.call(c.CREATE_WORKSPACE, "nadia", title="W", members=[{"person": "carlos"}])
        assert ws.partners == ["contoso", "northwind"]

    async def test_claimed_partner_must_match_what_is_known(self, mesh: Mesh) -> None:
        await meet(mesh, "carlos")
        await denied(
            ErrorCode.BAD_REQUEST,
            mesh.call(
                c.CREATE_WORKSPACE,
                "nadia",
                title="W",
                members=[{"person": "carlos", "partner": "fabrikam"}],
            ),
        )

    async def test_add_by_handle_leave_and_remove(self, mesh: Mesh) -> None:
        ws, *_ = await open_space(mesh)
        added = await mesh.call(c.ADD_MEMBER, "carlos", workspace=ws.id, person="fatima")
        assert added.partners == ["contoso", "fabrikam", "northwind"]
        again = await mesh.call(c.ADD_MEMBER, "carlos", workspace=ws.id, person="fatima")
        assert len(again.members) == 3
        # only the creator removes others
        await denied(
            ErrorCode.FORBIDDEN,
            mesh.call(c.REMOVE_MEMBER, "carlos", workspace=ws.id, person="fatima"),
        )
        removed = await mesh.call(c.REMOVE_MEMBER, "nadia", workspace=ws.id, person="fatima")
        assert [m.person for m in removed.members] == ["nadia", "carlos"]
        await denied(ErrorCode.NOT_FOUND, mesh.call(c.GET_WORKSPACE, "fatima", workspace=ws.id))

    async def test_operator_without_partner_cannot_open(self, mesh: Mesh) -> None:
        token = mesh.token("olivia", partner=None)
        await denied(
            ErrorCode.FORBIDDEN,
            mesh.call_as(
                c.CREATE_WORKSPACE, token, title="W", members=[{"person": "x", "partner": "p"}]
            ),
        )

    async def test_scopes_are_enforced(self, mesh: Mesh) -> None:
        ws, _, post, *_ = await open_space(mesh)
        forum_only = mesh.token("carlos", scope="forum:read forum:write")
        await denied(
            ErrorCode.FORBIDDEN, mesh.call_as(c.GET_WORKSPACE, forum_only, workspace=ws.id)
        )
        # a generic post route still needs the workspace scope for workspace posts
        await denied(
            ErrorCode.FORBIDDEN, mesh.call_as(c.EDIT_POST, forum_only, post=post.id, body="x")
        )


class TestNotesAndTasks:
    async def test_any_member_edits_notes_with_history(self, mesh: Mesh) -> None:
        ws, _, _, note, _ = await open_space(mesh)
        edited = await mesh.call(
            c.EDIT_NOTE, "nadia", workspace=ws.id, note=note.id, body="net 45", expected_version=1
        )
        assert (edited.version, edited.edited_by, edited.author) == (2, "nadia", "carlos")
        history = await mesh.call(c.NOTE_HISTORY, "carlos", workspace=ws.id, note=note.id)
        assert [(r.version, r.body, r.editor) for r in history.revisions] == [
            (1, "net 30", "carlos"),
            (2, "net 45", "nadia"),
        ]

    async def test_tasks_go_to_members_only(self, mesh: Mesh) -> None:
        ws, *_ = await open_space(mesh)
        await denied(
            ErrorCode.BAD_REQUEST,
            mesh.call(c.CREATE_TASK, "nadia", workspace=ws.id, title="t", assignee="fatima"),
        )
        task = await mesh.call(c.CREATE_TASK, "nadia", workspace=ws.id, title="t", assignee="nadia")
        cleared = await mesh.call(
            c.UPDATE_TASK, "nadia", workspace=ws.id, task=task.id, assignee=""
        )
        assert cleared.assignee is None
        with pytest.raises(Exception):
            await mesh.call(c.UPDATE_TASK, "nadia", workspace=ws.id, task=task.id, status="nope")
