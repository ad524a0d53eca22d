"""Events: one per change, through the outbox to JetStream; consumed events are idempotent."""

from __future__ import annotations

from typing import Any

from contracts import headers
from contracts.envelope import EventBase
from contracts.errors import ErrorCode
from contracts.subjects import EVENT_STREAM, event_subject
from contracts.v1 import collaboration as c
from contracts.v1.matching import IntroductionChanged, IntroductionConnected, IntroductionData
from contracts.v1.profile import PersonProfileUpdated, PersonPublic
from tests.collaboration.conftest import Mesh, until
from tests.collaboration.test_forums import denied, seed_category
from tests.collaboration.test_workspaces import meet

CREATED = "pm.v1.collaboration.content_created"
EDITED = "pm.v1.collaboration.content_edited"
HIDDEN = "pm.v1.collaboration.content_hidden"
MEMBERSHIP = "pm.v1.collaboration.workspace_membership"
ADDED = "pm.v1.collaboration.notification_added"


def summary(events: list[EventBase]) -> list[tuple[Any, ...]]:
    out = []
    for e in events:
        d = e.data
        if e.type == MEMBERSHIP:
            out.append((e.type, d.workspace, d.person, d.joined))
        else:
            out.append((e.type, d.kind, d.content_id, d.hidden))
    return out


class TestForumEvents:
    async def test_one_event_per_change(self, mesh: Mesh) -> None:
        await seed_category(mesh)
        thread = await mesh.call(
            c.CREATE_THREAD, "nadia", category="logistics", title="Reefers", body="Cold chain"
        )
        post = await mesh.call(c.CREATE_POST, "carlos", thread=thread.id, body="We ship")
        await mesh.call(c.EDIT_POST, "carlos", post=post.id, body="We ship weekly")
        await mesh.call(c.EDIT_POST, "carlos", post=post.id, body="We ship weekly")  # no change
        await mesh.call(c.HIDE_POST, "bruno", post=post.id)
        await mesh.call(c.HIDE_POST, "bruno", post=post.id)  # no change
        await mesh.call(c.HIDE_POST, "bruno", post=post.id, hidden=False)
        await mesh.call(c.AGREE_POST, "felix", post=post.id)  # reactions are not content
        await mesh.call(c.LOCK_THREAD, "bruno", thread=thread.id)
        await denied(
            ErrorCode.FORBIDDEN, mesh.call(c.EDIT_THREAD, "noah", thread=thread.id, body="x")
        )
        events = await mesh.events()
        notes = [e for e in events if e.type == ADDED]  # carlos replied to nadia's thread
        assert [(e.data.recipient, e.data.notification.kind) for e in notes] == [("nadia", "reply")]
        events = [e for e in events if e.type != ADDED]
        assert summary(events) == [
            (CREATED, "thread", thread.id, False),
            (CREATED, "post", post.id, False),
            (EDITED, "post", post.id, False),
            (HIDDEN, "post", post.id, True),
            (HIDDEN, "post", post.id, False),
        ]
        first = events[0]
        assert (first.ecosystem, first.partner, first.subject) == (mesh.eco, "northwind", thread.id)
        assert (first.data.title, first.data.text, first.data.author) == (
            "Reefers",
            "Cold chain",
            "nadia",
        )
        assert first.data.workspace is None and first.data.audience_partners == []
        assert events[2].data.text == "We ship weekly" and events[2].data.thread == thread.id
        assert len({e.id for e in events}) == len(events)

    async def test_hiding_a_thread_hides_its_posts(self, mesh: Mesh) -> None:
        await seed_category(mesh)
        thread = await mesh.call(
            c.CREATE_THREAD, "nadia", category="logistics", title="T", body="b"
        )
        p1 = await mesh.call(c.CREATE_POST, "carlos", thread=thread.id, body="one")
        p2 = await mesh.call(c.CREATE_POST, "fatima", thread=thread.id, body="two")
        await mesh.call(c.HIDE_POST, "bruno", post=p2.id)
        await mesh.call(c.HIDE_THREAD, "bruno", thread=thread.id)
        await mesh.call(c.HIDE_THREAD, "bruno", thread=thread.id, hidden=False)
        hides = [e for e in await mesh.events() if e.type == HIDDEN]
        assert summary(hides) == [
            (HIDDEN, "post", p2.id, True),
            (HIDDEN, "thread", thread.id, True),
            (HIDDEN, "post", p1.id, True),
            (HIDDEN, "thread", thread.id, False),
            (HIDDEN, "post", p1.id, False),
        ]

    async def test_mentions_travel_with_the_content(self, mesh: Mesh) -> None:
        await meet(mesh, "carlos")
        thread = await mesh.call(
            c.CREATE_THREAD, "nadia", category="introductions", title="Hi", body="cc @carlos"
        )
        events = [e for e in await mesh.events() if e.subject == thread.id]
        assert [e.data.mentions for e in events] == [["carlos"]]


class TestWorkspaceEvents:
    async def test_membership_and_audience(self, mesh: Mesh) -> None:
        await meet(mesh, "carlos", "fatima")
        before = len(await mesh.events())
        ws = await mesh.call(
            c.CREATE_WORKSPACE, "nadia", title="Lane", members=[{"person": "carlos"}]
        )
        note = await mesh.call(c.CREATE_NOTE, "carlos", workspace=ws.id, title="T", body="net 30")
        await mesh.call(c.ADD_MEMBER, "nadia", workspace=ws.id, person="fatima")
        await mesh.call(c.EDIT_NOTE, "fatima", workspace=ws.id, note=note.id, body="net 45")
        await mesh.call(c.REMOVE_MEMBER, "nadia", workspace=ws.id, person="fatima")
        await mesh.call(c.CREATE_TASK, "nadia", workspace=ws.id, title="no event")
        events = (await mesh.events())[before:]
        assert summary(events) == [
            (MEMBERSHIP, ws.id, "nadia", True),
            (MEMBERSHIP, ws.id, "carlos", True),
            (CREATED, "note", note.id, False),
            (MEMBERSHIP, ws.id, "fatima", True),
            (EDITED, "note", note.id, False),
            (MEMBERSHIP, ws.id, "fatima", False),
        ]
        assert events[2].data.workspace == ws.id
        assert events[2].data.audience_partners == ["contoso", "northwind"]
        assert events[4].data.audience_partners == ["contoso", "fabrikam", "northwind"]
        assert events[5].partner == "fabrikam"


class TestConsumedEvents:
    async def publish(self, mesh: Mesh, event: EventBase, msg_id: str | None = None) -> int:
        js = mesh.nc.jetstream()
        ack = await js.publish(
            event_subject(event.ecosystem, event.type),
            event.model_dump_json().encode(),
            headers={headers.MSG_ID: msg_id or event.id},
        )
        return ack.seq

    async def processed(self, mesh: Mesh, seq: int) -> None:
        js = mesh.nc.jetstream()

        async def done() -> bool:
            info = await js.consumer_info(EVENT_STREAM, "collaboration")
            return bool(info.ack_floor.stream_seq >= seq and info.num_ack_pending == 0)

        await until(done)

    def connected(self, mesh: Mesh, intro: str = "i-1") -> IntroductionConnected:
        data = IntroductionData(
            introduction=intro,
            a="noah",
            a_partner="northwind",
            b="chloe",
            b_partner="contoso",
            status="connected",
            broker="bruno",
            note="Talk about pallets",
        )
        return IntroductionConnected(ecosystem=mesh.eco, subject=intro, data=data)

    async def state(
        self, mesh: Mesh
    ) -> tuple[dict[str, list[tuple[str, str | None, tuple[str, ...]]]], int]:
        spaces: dict[str, list[tuple[str, str | None, tuple[str, ...]]]] = {}
        for who in ("noah", "chloe"):
            spaces[who] = [
                (w.id, w.introduction, tuple(m.person for m in w.members))
                for w in (await mesh.call(c.LIST_WORKSPACES, who)).items
            ]
        memberships = [e for e in await mesh.events() if e.type == MEMBERSHIP]
        return spaces, len(memberships)

    async def test_introduction_opens_one_workspace_whatever_the_replays(self, mesh: Mesh) -> None:
        event = self.connected(mesh)
        await self.processed(mesh, await self.publish(mesh, event))
        spaces, memberships = await self.state(mesh)
        assert spaces["noah"] == spaces["chloe"]
        [(ws_id, intro, members)] = spaces["noah"]
        assert (intro, members, memberships) == ("i-1", ("noah", "chloe"), 2)
        ws = await mesh.call(c.GET_WORKSPACE, "chloe", workspace=ws_id)
        assert ws.partners == ["contoso", "northwind"]
        await denied(ErrorCode.NOT_FOUND, mesh.call(c.GET_WORKSPACE, "bruno", workspace=ws_id))
        # the same event replayed (past the stream's de-duplication), twice ...
        for n in range(2):
            await self.processed(mesh, await self.publish(mesh, event, f"{event.id}-replay{n}"))
        # ... and the same connection announced again under a new event id
        again = self.connected(mesh)
        await self.processed(mesh, await self.publish(mesh, again))
        assert await self.state(mesh) == (spaces, memberships)

    async def test_profile_events_name_people_once(self, mesh: Mesh) -> None:
        await self.processed(mesh, await self.publish(mesh, self.connected(mesh, "i-2")))
        update = PersonProfileUpdated(
            ecosystem=mesh.eco,
            data=PersonPublic(person="noah", partner="northwind", name="Noah Lindqvist"),
        )
        for n in range(2):
            await self.processed(mesh, await self.publish(mesh, update, f"{update.id}-{n}"))
        [ws] = (await mesh.call(c.LIST_WORKSPACES, "noah")).items
        names = {m.person: m.name for m in ws.members}
        assert names["noah"] == "Noah Lindqvist"
        assert names["chloe"] == ""  # never named by a profile, never called the service

    async def test_a_replayed_introduction_step_notifies_once(self, mesh: Mesh) -> None:
        data = self.connected(mesh, "i-3").data.model_copy(
            update={"status": "accepted", "actor": "chloe"}
        )
        step = IntroductionChanged(ecosystem=mesh.eco, subject="i-3", data=data)
        for n in range(3):  # delivered, then replayed past the stream's de-duplication
            await self.processed(mesh, await self.publish(mesh, step, f"{step.id}-{n}"))
        box = await mesh.call(c.LIST_NOTIFICATIONS, "noah")
        mine = [(x.kind, x.action, x.actor) for x in box.items if x.content_id == "i-3"]
        assert mine == [("introduction", "accepted", "chloe")]
        assert not [x for x in (await mesh.call(c.LIST_NOTIFICATIONS, "chloe")).items]


class TestHandlesFromIdentity:
    """Access tokens carry no preferred_username: identity's registration names the handle."""

    async def register(
        self, mesh: Mesh, person: str, username: str, name: str, partner: str
    ) -> None:
        from contracts.v1.identity import PersonData, PersonRegistered

        event = PersonRegistered(
            ecosystem=mesh.eco,
            partner=partner,
            subject=person,
            data=PersonData(person=person, partner=partner, name=name, username=username),
        )
        await TestConsumedEvents().processed(mesh, await TestConsumedEvents().publish(mesh, event))

    async def test_registered_people_can_be_mentioned_and_suggested(self, mesh: Mesh) -> None:
        await seed_category(mesh)
        await self.register(mesh, "sub-noah-1", "noah.n", "Noah Nguyen", "northwind")
        await self.register(mesh, "sub-nora-2", "nora", "Nora Berg", "contoso")
        # A token without preferred_username, as identity issues them.
        bare = mesh.tokens.mint(eco=mesh.eco, sub="sub-chloe", partner="contoso", roles=["member"])
        thread = await mesh.call_as(
            c.CREATE_THREAD, bare, category="logistics", title="Pallets", body="@noah.n, look"
        )
        assert thread.mentions == ["sub-noah-1"]
        noah = mesh.tokens.mint(
            eco=mesh.eco, sub="sub-noah-1", partner="northwind", roles=["member"]
        )
        note = await mesh.call_as(c.LIST_NOTIFICATIONS, noah)
        assert [n.content_id for n in note.items] == [thread.id]
        found = await mesh.call_as(c.MENTION_SUGGESTIONS, bare, q="no")
        assert [(p.handle, p.name) for p in found.items] == [
            ("noah.n", "Noah Nguyen"),
            ("nora", "Nora Berg"),
        ]
        by_name = await mesh.call_as(c.MENTION_SUGGESTIONS, bare, q="BERG")
        assert [p.person for p in by_name.items] == ["sub-nora-2"]
        assert (await mesh.call_as(c.MENTION_SUGGESTIONS, bare, q="zz")).items == []
        # Wildcards are text, not patterns.
        assert (await mesh.call_as(c.MENTION_SUGGESTIONS, bare, q="%")).items == []

    async def test_suggestions_stay_in_the_callers_ecosystem(self, mesh: Mesh) -> None:
        await self.register(mesh, "sub-noah-1", "noah.n", "Noah Nguyen", "northwind")
        other = mesh.tokens.mint(eco="elsewhere", sub="x", partner="p", roles=["member"])
        err = await denied(
            ErrorCode.FORBIDDEN, mesh.call_as(c.MENTION_SUGGESTIONS, other, q="noah")
        )
        assert err is not None
