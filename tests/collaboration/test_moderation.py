"""Moderation by brokers and operators: hide, lock, move, with an audit trail."""

from __future__ import annotations

from typing import Any

from contracts.claims import Role
from contracts.errors import ErrorCode
from contracts.v1 import collaboration as c
from tests.collaboration.conftest import Mesh
from tests.collaboration.test_forums import denied, seed_category


async def thread_with_post(mesh: Mesh) -> tuple[Any, Any]:
    await seed_category(mesh)
    await seed_category(mesh, "manufacturing")
    thread = await mesh.call(
        c.CREATE_THREAD, "nadia", category="logistics", title="Pallets", body="Euro pallets?"
    )
    post = await mesh.call(c.CREATE_POST, "carlos", thread=thread.id, body="Spam spam")
    return thread, post


class TestDenials:
    async def test_members_and_partner_admins_cannot_moderate(self, mesh: Mesh) -> None:
        thread, post = await thread_with_post(mesh)
        for who in ("nadia", "noah", "carlos", "fatima"):
            await denied(ErrorCode.FORBIDDEN, mesh.call(c.HIDE_THREAD, who, thread=thread.id))
            await denied(ErrorCode.FORBIDDEN, mesh.call(c.HIDE_POST, who, post=post.id))
            await denied(ErrorCode.FORBIDDEN, mesh.call(c.LOCK_THREAD, who, thread=thread.id))
            await denied(
                ErrorCode.FORBIDDEN,
                mesh.call(c.MOVE_THREAD, who, thread=thread.id, category="manufacturing"),
            )
            await denied(ErrorCode.FORBIDDEN, mesh.call(c.MODERATION_LOG, who))
        seen = await mesh.call(c.GET_THREAD, "felix", thread=thread.id)
        assert (seen.hidden, seen.locked, seen.category) == (False, False, "logistics")
        assert [p.id for p in seen.posts] == [post.id]
        assert (await mesh.call(c.MODERATION_LOG, "bruno")).items == []

    async def test_broker_of_another_ecosystem_cannot_moderate(self, mesh: Mesh) -> None:
        thread, _ = await thread_with_post(mesh)
        other = mesh.token("bruno", eco="globex")
        await denied(ErrorCode.FORBIDDEN, mesh.call_as(c.HIDE_THREAD, other, thread=thread.id))
        await denied(
            ErrorCode.NOT_FOUND,
            mesh.call_as(c.HIDE_THREAD, other, eco="globex", thread=thread.id),
        )

    async def test_role_without_write_scope_cannot_moderate(self, mesh: Mesh) -> None:
        thread, _ = await thread_with_post(mesh)
        token = mesh.token("bruno", scope="forum:read")
        await denied(ErrorCode.FORBIDDEN, mesh.call_as(c.HIDE_THREAD, token, thread=thread.id))


class TestHide:
    async def test_hidden_post_vanishes_for_others(self, mesh: Mesh) -> None:
        thread, post = await thread_with_post(mesh)
        hidden = await mesh.call(c.HIDE_POST, "bruno", post=post.id, reason="spam")
        assert hidden.hidden
        seen = await mesh.call(c.GET_THREAD, "felix", thread=thread.id)
        assert (seen.posts, seen.post_count) == ([], 0)
        await denied(ErrorCode.NOT_FOUND, mesh.call(c.POST_HISTORY, "felix", post=post.id))
        await denied(ErrorCode.NOT_FOUND, mesh.call(c.AGREE_POST, "felix", post=post.id))
        # the author still sees it (marked), and so do moderators
        for who in ("carlos", "olivia"):
            posts = (await mesh.call(c.GET_THREAD, who, thread=thread.id)).posts
            assert [(p.id, p.hidden) for p in posts] == [(post.id, True)]
        await denied(ErrorCode.CONFLICT, mesh.call(c.EDIT_POST, "carlos", post=post.id, body="x"))
        await mesh.call(c.HIDE_POST, "olivia", post=post.id, hidden=False, reason="appeal")
        seen = await mesh.call(c.GET_THREAD, "felix", thread=thread.id)
        assert (len(seen.posts), seen.post_count) == (1, 1)

    async def test_notifications_about_hidden_content_go_away(self, mesh: Mesh) -> None:
        thread, post = await thread_with_post(mesh)
        await mesh.call(c.CREATE_THREAD, "felix", category="manufacturing", title="Hi", body="x")
        reply = await mesh.call(
            c.CREATE_POST, "noah", thread=thread.id, body="hi", mentions=["felix"]
        )
        await mesh.call(c.EDIT_POST, "carlos", post=post.id, body="Spam @felix")
        assert (await mesh.call(c.LIST_NOTIFICATIONS, "felix")).unread == 2
        await mesh.call(c.HIDE_POST, "bruno", post=post.id)
        box = await mesh.call(c.LIST_NOTIFICATIONS, "felix")
        assert [n.content_id for n in box.items] == [reply.id]
        await mesh.call(c.HIDE_THREAD, "bruno", thread=thread.id)
        assert (await mesh.call(c.LIST_NOTIFICATIONS, "felix")).items == []

    async def test_hidden_thread_is_404_to_others(self, mesh: Mesh) -> None:
        thread, _ = await thread_with_post(mesh)
        await mesh.call(c.HIDE_THREAD, "olivia", thread=thread.id, reason="off topic")
        for who in ("felix", "carlos", "noah"):
            await denied(ErrorCode.NOT_FOUND, mesh.call(c.GET_THREAD, who, thread=thread.id))
            await denied(
                ErrorCode.NOT_FOUND, mesh.call(c.CREATE_POST, who, thread=thread.id, body="x")
            )
            listed = await mesh.call(c.LIST_THREADS, who, category="logistics")
            assert listed.items == []
        assert (await mesh.call(c.GET_THREAD, "nadia", thread=thread.id)).hidden
        assert len((await mesh.call(c.LIST_THREADS, "bruno", category="logistics")).items) == 1
        await denied(
            ErrorCode.CONFLICT, mesh.call(c.CREATE_POST, "nadia", thread=thread.id, body="x")
        )


class TestLockAndMove:
    async def test_locked_thread_refuses_replies_but_not_moderators(self, mesh: Mesh) -> None:
        thread, post = await thread_with_post(mesh)
        await mesh.call(c.LOCK_THREAD, "bruno", thread=thread.id, reason="settled")
        await denied(
            ErrorCode.CONFLICT, mesh.call(c.CREATE_POST, "felix", thread=thread.id, body="x")
        )
        await denied(ErrorCode.CONFLICT, mesh.call(c.EDIT_POST, "carlos", post=post.id, body="y"))
        await mesh.call(c.CREATE_POST, "olivia", thread=thread.id, body="Closing note")
        await mesh.call(c.LOCK_THREAD, "bruno", thread=thread.id, locked=False)
        await mesh.call(c.CREATE_POST, "felix", thread=thread.id, body="x")
        assert (await mesh.call(c.GET_THREAD, "felix", thread=thread.id)).post_count == 3

    async def test_refused_reply_leaves_the_thread_as_it_was(self, mesh: Mesh) -> None:
        # The reply counts itself on the thread in the statement that reads it: the
        # refusal must take that back.
        thread, _ = await thread_with_post(mesh)
        await mesh.call(c.LOCK_THREAD, "bruno", thread=thread.id, reason="settled")
        before = await mesh.call(c.GET_THREAD, "felix", thread=thread.id)
        await denied(
            ErrorCode.CONFLICT, mesh.call(c.CREATE_POST, "felix", thread=thread.id, body="x")
        )
        after = await mesh.call(c.GET_THREAD, "felix", thread=thread.id)
        assert (after.post_count, after.last_activity_at) == (
            before.post_count,
            before.last_activity_at,
        )
        assert [p.body for p in after.posts] == [p.body for p in before.posts]

    async def test_move_to_existing_category_only(self, mesh: Mesh) -> None:
        thread, _ = await thread_with_post(mesh)
        await denied(
            ErrorCode.NOT_FOUND,
            mesh.call(c.MOVE_THREAD, "bruno", thread=thread.id, category="nowhere"),
        )
        moved = await mesh.call(c.MOVE_THREAD, "bruno", thread=thread.id, category="manufacturing")
        assert moved.category == "manufacturing"
        assert (await mesh.call(c.LIST_THREADS, "noah", category="logistics")).items == []
        listed = await mesh.call(c.LIST_THREADS, "noah", category="manufacturing")
        assert [t.id for t in listed.items] == [thread.id]


class TestAudit:
    async def test_every_action_is_audited(self, mesh: Mesh) -> None:
        thread, post = await thread_with_post(mesh)
        await mesh.call(c.HIDE_POST, "bruno", post=post.id, reason="spam")
        await mesh.call(c.HIDE_POST, "bruno", post=post.id, reason="again")  # no change
        await mesh.call(c.LOCK_THREAD, "olivia", thread=thread.id, reason="done")
        await mesh.call(c.MOVE_THREAD, "olivia", thread=thread.id, category="manufacturing")
        log = await mesh.call(c.MODERATION_LOG, "olivia")
        assert [(e.actor, e.action, e.target, e.reason) for e in log.items] == [
            ("olivia", "move", thread.id, ""),
            ("olivia", "lock", thread.id, "done"),
            ("bruno", "hide", post.id, "spam"),
        ]
        assert log.items[0].detail == {"from": "logistics", "to": "manufacturing"}
        operator_without_partner = mesh.token("olivia", partner=None, roles=[Role.OPERATOR])
        again = await mesh.call_as(c.MODERATION_LOG, operator_without_partner)
        assert len(again.items) == 3
