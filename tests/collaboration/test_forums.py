"""Forums: categories, threads, posts, mentions, agreement, edits with history."""

from __future__ import annotations

from collections.abc import Awaitable

import pytest

from contracts.claims import Scope
from contracts.errors import ErrorCode
from contracts.v1 import collaboration as c
from mesh.errors import MeshError
from tests.collaboration.conftest import Mesh
from tests.support.tokens import TokenFactory


async def denied(code: ErrorCode, coro: Awaitable[object]) -> MeshError:
    with pytest.raises(MeshError) as err:
        await coro
    assert err.value.code is code, err.value
    return err.value


async def seed_category(mesh: Mesh, slug: str = "logistics") -> None:
    await mesh.call(c.CREATE_CATEGORY, "olivia", slug=slug, name=slug.title())


class TestCategories:
    async def test_operator_creates_and_everyone_lists(self, mesh: Mesh) -> None:
        created = await mesh.call(
            c.CREATE_CATEGORY, "olivia", slug="logistics", name="Logistics", description="Moving"
        )
        assert created.slug == "logistics"
        listed = await mesh.call(c.LIST_CATEGORIES, "felix")
        assert [(x.slug, x.thread_count) for x in listed.items] == [("logistics", 0)]

    async def test_non_operators_cannot_create(self, mesh: Mesh) -> None:
        for who in ("bruno", "nadia", "noah"):
            err = await denied(
                ErrorCode.FORBIDDEN, mesh.call(c.CREATE_CATEGORY, who, slug="x", name="X")
            )
            assert "operator" in err.detail
        assert (await mesh.call(c.LIST_CATEGORIES, "olivia")).items == []

    async def test_duplicate_slug_conflicts(self, mesh: Mesh) -> None:
        await seed_category(mesh)
        await denied(
            ErrorCode.CONFLICT, mesh.call(c.CREATE_CATEGORY, "olivia", slug="logistics", name="L")
        )

    async def test_bad_slug_is_a_validation_error(self, mesh: Mesh) -> None:
        err = await denied(
            ErrorCode.VALIDATION_FAILED,
            mesh.raw(c.CREATE_CATEGORY, "olivia", slug="Not A Slug", name="X"),
        )
        assert err.errors


class TestThreadsAndPosts:
    async def test_thread_with_posts_seen_across_partners(self, mesh: Mesh) -> None:
        await seed_category(mesh)
        thread = await mesh.call(
            c.CREATE_THREAD,
            "nadia",
            category="logistics",
            title="Cold chain",
            body="Who ships **reefers** to Rotterdam?",
        )
        assert "<strong>reefers</strong>" in thread.html
        assert (thread.author, thread.author_partner) == ("nadia", "northwind")
        post = await mesh.call(c.CREATE_POST, "carlos", thread=thread.id, body="We do, weekly.")
        assert post.author_partner == "contoso"
        for who in ("felix", "olivia", "bruno", "noah"):
            seen = await mesh.call(c.GET_THREAD, who, thread=thread.id)
            assert [p.id for p in seen.posts] == [post.id]
            assert seen.post_count == 1
        listed = await mesh.call(c.LIST_THREADS, "chloe", category="logistics")
        assert [t.id for t in listed.items] == [thread.id]
        cats = await mesh.call(c.LIST_CATEGORIES, "chloe")
        assert cats.items[0].thread_count == 1

    async def test_other_ecosystem_sees_nothing(self, mesh: Mesh, tokens: TokenFactory) -> None:
        await seed_category(mesh)
        thread = await mesh.call(
            c.CREATE_THREAD, "nadia", category="logistics", title="T", body="b"
        )
        stranger = mesh.token("nadia", eco="globex")
        # a token of another ecosystem may not address this one at all ...
        await denied(ErrorCode.FORBIDDEN, mesh.call_as(c.GET_THREAD, stranger, thread=thread.id))
        # ... and in its own ecosystem, this thread does not exist
        await denied(
            ErrorCode.NOT_FOUND,
            mesh.call_as(c.GET_THREAD, stranger, eco="globex", thread=thread.id),
        )
        await denied(
            ErrorCode.NOT_FOUND,
            mesh.call_as(c.CREATE_POST, stranger, eco="globex", thread=thread.id, body="x"),
        )

    async def test_denials_without_token_scope_or_in_time(self, mesh: Mesh) -> None:
        await seed_category(mesh)
        await denied(ErrorCode.UNAUTHENTICATED, mesh.call(c.LIST_CATEGORIES, None))
        read_only = mesh.token("noah", scope=Scope.FORUM_READ.value)
        await denied(
            ErrorCode.FORBIDDEN,
            mesh.call_as(c.CREATE_THREAD, read_only, category="logistics", title="t", body="b"),
        )
        expired = mesh.token("noah", expires_in=-120)
        await denied(ErrorCode.UNAUTHENTICATED, mesh.call_as(c.LIST_CATEGORIES, expired))

    async def test_unknown_category_and_thread_are_404(self, mesh: Mesh) -> None:
        await denied(
            ErrorCode.NOT_FOUND,
            mesh.call(c.CREATE_THREAD, "noah", category="nope", title="t", body="b"),
        )
        await denied(ErrorCode.NOT_FOUND, mesh.call(c.GET_THREAD, "noah", thread="t_missing"))

    async def test_blank_or_control_input_is_refused_and_nothing_written(self, mesh: Mesh) -> None:
        await seed_category(mesh)
        for body in ("   \n ", "nul\x00byte", "x" * 20_001):
            await denied(
                ErrorCode.VALIDATION_FAILED,
                mesh.raw(c.CREATE_THREAD, "noah", category="logistics", title="t", body=body),
            )
        assert (await mesh.call(c.LIST_THREADS, "noah", category="logistics")).items == []
        assert await mesh.events() == []


class TestMentions:
    async def test_mention_by_handle_and_by_id_notifies(self, mesh: Mesh) -> None:
        await seed_category(mesh)
        await mesh.call(c.LIST_NOTIFICATIONS, "carlos")  # reading does not register anyone
        # carlos becomes known to the service when he writes
        t0 = await mesh.call(c.CREATE_THREAD, "carlos", category="logistics", title="Hi", body="x")
        thread = await mesh.call(
            c.CREATE_POST,
            "nadia",
            thread=t0.id,
            body="Ask @carlos, or @nobody.",
            mentions=["fatima"],
        )
        assert set(thread.mentions) == {"carlos", "fatima"}
        for who in ("carlos", "fatima"):
            box = await mesh.call(c.LIST_NOTIFICATIONS, who)
            assert [(n.actor, n.content_id, n.read) for n in box.items] == [
                ("nadia", thread.id, False)
            ]
            assert box.unread == 1
        assert (await mesh.call(c.LIST_NOTIFICATIONS, "nadia")).items == []
        marked = await mesh.call(c.MARK_READ, "carlos")
        assert marked.unread == 0 and marked.items[0].read
        # others cannot mark carlos's notifications
        fatima_box = await mesh.call(c.LIST_NOTIFICATIONS, "fatima")
        await mesh.call(c.MARK_READ, "noah", ids=[fatima_box.items[0].id])
        assert (await mesh.call(c.LIST_NOTIFICATIONS, "fatima")).unread == 1

    @pytest.mark.parametrize(
        "ids",
        [[2**63], [-(2**80)], [0], list(range(1, 502))],
        ids=["past-64-bits", "far-negative", "zero", "501-ids"],
    )
    async def test_ids_beyond_a_database_key_are_refused_not_a_crash(
        self, mesh: Mesh, ids: list[int]
    ) -> None:
        """Found by fuzzing: ids past 64 bits reached SQLite and overflowed (a 500)."""
        err = await denied(ErrorCode.VALIDATION_FAILED, mesh.raw(c.MARK_READ, "carlos", ids=ids))
        assert err.errors and err.errors[0]["loc"][0] == "ids"

    async def test_handles_are_matched_safely(self, mesh: Mesh) -> None:
        await seed_category(mesh)
        writers = [("noah", "sam"), ("chloe", "sam"), ("felix", "noah")]
        for who, handle in writers:  # two people share a handle; one takes another's id
            token = mesh.token(who, preferred_username=handle)
            await mesh.call_as(c.CREATE_THREAD, token, category="logistics", title="Hi", body="x")
        thread = await mesh.call(
            c.CREATE_THREAD, "nadia", category="logistics", title="T", body="@sam, @noah"
        )
        assert thread.mentions == ["noah"]
        assert (await mesh.call(c.LIST_NOTIFICATIONS, "felix")).items == []
        assert (await mesh.call(c.LIST_NOTIFICATIONS, "chloe")).items == []
        assert (await mesh.call(c.LIST_NOTIFICATIONS, "noah")).unread == 1

    async def test_edit_notifies_only_newly_mentioned(self, mesh: Mesh) -> None:
        await seed_category(mesh)
        for who in ("carlos", "chloe"):
            await mesh.call(c.CREATE_THREAD, who, category="logistics", title="Hi", body="x")
        thread = await mesh.call(
            c.CREATE_THREAD, "nadia", category="logistics", title="T", body="cc @carlos"
        )
        await mesh.call(c.EDIT_THREAD, "nadia", thread=thread.id, body="cc @carlos @chloe")
        assert (await mesh.call(c.LIST_NOTIFICATIONS, "carlos")).unread == 1
        assert (await mesh.call(c.LIST_NOTIFICATIONS, "chloe")).unread == 1


class TestAgree:
    async def test_one_agreement_per_person(self, mesh: Mesh) -> None:
        await seed_category(mesh)
        thread = await mesh.call(
            c.CREATE_THREAD, "nadia", category="logistics", title="T", body="b"
        )
        post = await mesh.call(c.CREATE_POST, "carlos", thread=thread.id, body="Agreed?")
        for _ in range(2):
            reply = await mesh.call(c.AGREE_POST, "fatima", post=post.id)
        assert (reply.agree_count, reply.agreed) == (1, True)
        reply = await mesh.call(c.AGREE_POST, "noah", post=post.id)
        assert reply.agree_count == 2
        reply = await mesh.call(c.UNAGREE_POST, "fatima", post=post.id)
        assert (reply.agree_count, reply.agreed) == (1, False)
        await mesh.call(c.AGREE_THREAD, "chloe", thread=thread.id)
        seen = await mesh.call(c.GET_THREAD, "chloe", thread=thread.id)
        assert (seen.agree_count, seen.agreed) == (1, True)
        assert (seen.posts[0].agree_count, seen.posts[0].agreed) == (1, False)


class TestEdits:
    async def test_edits_keep_history(self, mesh: Mesh) -> None:
        await seed_category(mesh)
        thread = await mesh.call(
            c.CREATE_THREAD, "nadia", category="logistics", title="First", body="one"
        )
        edited = await mesh.call(
            c.EDIT_THREAD, "nadia", thread=thread.id, title="Second", body="two", expected_version=1
        )
        assert (edited.title, edited.body, edited.version) == ("Second", "two", 2)
        assert edited.edited_at is not None
        history = await mesh.call(c.THREAD_HISTORY, "felix", thread=thread.id)
        assert [(r.version, r.title, r.body) for r in history.revisions] == [
            (1, "First", "one"),
            (2, "Second", "two"),
        ]
        post = await mesh.call(c.CREATE_POST, "carlos", thread=thread.id, body="*a*")
        await mesh.call(c.EDIT_POST, "carlos", post=post.id, body="*b*")
        await mesh.call(c.EDIT_POST, "carlos", post=post.id, body="*c*")
        history = await mesh.call(c.POST_HISTORY, "nadia", post=post.id)
        assert [r.body for r in history.revisions] == ["*a*", "*b*", "*c*"]
        assert history.revisions[-1].html == "<p><em>c</em></p>\n"

    async def test_only_the_author_edits(self, mesh: Mesh) -> None:
        await seed_category(mesh)
        thread = await mesh.call(
            c.CREATE_THREAD, "nadia", category="logistics", title="T", body="b"
        )
        post = await mesh.call(c.CREATE_POST, "carlos", thread=thread.id, body="mine")
        for who in ("noah", "olivia", "bruno"):  # same partner, operator, broker
            await denied(
                ErrorCode.FORBIDDEN, mesh.call(c.EDIT_THREAD, who, thread=thread.id, body="x")
            )
            await denied(ErrorCode.FORBIDDEN, mesh.call(c.EDIT_POST, who, post=post.id, body="x"))
        history = await mesh.call(c.POST_HISTORY, "nadia", post=post.id)
        assert len(history.revisions) == 1

    async def test_stale_version_is_refused(self, mesh: Mesh) -> None:
        await seed_category(mesh)
        thread = await mesh.call(
            c.CREATE_THREAD, "nadia", category="logistics", title="T", body="b"
        )
        await mesh.call(c.EDIT_THREAD, "nadia", thread=thread.id, body="b2")
        await denied(
            ErrorCode.PRECONDITION_FAILED,
            mesh.call(c.EDIT_THREAD, "nadia", thread=thread.id, body="b3", expected_version=1),
        )
        await denied(ErrorCode.BAD_REQUEST, mesh.call(c.EDIT_THREAD, "nadia", thread=thread.id))
        seen = await mesh.call(c.GET_THREAD, "nadia", thread=thread.id)
        assert (seen.body, seen.version) == ("b2", 2)
