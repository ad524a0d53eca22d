"""Workspaces across an alliance: an introduction across opens one whose members are of
both ecosystems, each reaching it through their own ecosystem's routes; nobody else of
either sees it, and the allied member is refused while the alliance is not active."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from contracts import headers
from contracts.envelope import EventBase
from contracts.errors import ErrorCode
from contracts.policy import Operation
from contracts.subjects import event_subject
from contracts.v1 import collaboration as c
from contracts.v1.alliances import (
    AllianceChanged,
    AllianceState,
    AllianceStatus,
    DirectionTerms,
    Sharing,
)
from contracts.v1.matching import IntroductionChanged, IntroductionConnected, IntroductionData
from services.collaboration.allied import ALLIANCES
from tests.collaboration.conftest import Mesh, until
from tests.collaboration.test_forums import denied


class Pact:
    """An ecosystem allied with the test's one, and their alliance."""

    def __init__(self, mesh: Mesh) -> None:
        self.mesh = mesh
        self.eco = f"{mesh.eco}-ally"
        self.id = f"al-{uuid.uuid4().hex[:10]}"
        self.version = 0

    async def publish(self, event: EventBase) -> None:
        await self.mesh.nc.jetstream().publish(
            event_subject(event.ecosystem, event.type),
            event.model_dump_json().encode(),
            headers={headers.MSG_ID: event.id},
        )

    async def set(self, status: AllianceStatus) -> None:
        """The alliance's next state, once collaboration recorded it."""
        self.version += 1
        x, y = self.mesh.eco, self.eco
        terms = DirectionTerms(share=Sharing.PEOPLE)
        state = AllianceState(
            alliance=self.id,
            ecosystems=[x, y],
            status=status,
            version=self.version,
            offered_by=x,
            terms={x: terms, y: terms},
            changed_at=datetime.now(UTC),
            changed_by="olga",
        )
        await self.publish(AllianceChanged(ecosystem=x, subject=self.id, data=state))
        db, version = self.mesh.rt.db, self.version

        async def recorded() -> bool:
            async with db.transaction() as s:
                got = await ALLIANCES.get(s, self.id)
            return got is not None and got.version == version

        await until(recorded)

    def token(self, who: str) -> str:
        return self.mesh.token(who, eco=self.eco, partner="yonder")

    async def call(self, op: Operation, who: str, **fields: Any) -> Any:
        return await self.mesh.call_as(op, self.token(who), eco=self.eco, **fields)

    async def connect(self) -> str:
        """noah (of the test's ecosystem) and yara (of the ally) accepted an introduction
        across; the id of the workspace it opened."""
        data = IntroductionData(
            introduction=f"i-{uuid.uuid4().hex[:8]}",
            a="noah",
            a_partner="northwind",
            b="yara",
            b_partner="yonder",
            status="connected",
            broker="bruno",
            a_eco=self.mesh.eco,
            b_eco=self.eco,
        )
        await self.publish(
            IntroductionConnected(ecosystem=self.mesh.eco, subject=data.introduction, data=data)
        )

        async def opened() -> bool:
            spaces = (await self.mesh.call(c.LIST_WORKSPACES, "noah")).items
            return any(w.introduction == data.introduction for w in spaces)

        await until(opened)
        [ws] = (await self.mesh.call(c.LIST_WORKSPACES, "noah")).items
        return str(ws.id)


class TestWorkspaceAcross:
    async def test_each_member_uses_it_through_their_own_ecosystem(self, mesh: Mesh) -> None:
        pact = Pact(mesh)
        await pact.set(AllianceStatus.ACTIVE)
        ws_id = await pact.connect()
        [mine] = (await mesh.call(c.LIST_WORKSPACES, "noah")).items
        [hers] = (await pact.call(c.LIST_WORKSPACES, "yara")).items
        assert mine.id == hers.id == ws_id
        assert {(x.person, x.ecosystem) for x in hers.members} == {
            ("noah", mesh.eco),
            ("yara", pact.eco),
        }
        thread = await pact.call(
            c.WS_CREATE_THREAD, "yara", workspace=ws_id, title="Pallets", body="when?"
        )
        await mesh.call(c.WS_CREATE_POST, "noah", workspace=ws_id, thread=thread.id, body="Monday")
        threads = await mesh.call(c.WS_LIST_THREADS, "noah", workspace=ws_id)
        assert [t.title for t in threads.items] == ["Pallets"]
        seen = await pact.call(c.WS_GET_THREAD, "yara", workspace=ws_id, thread=thread.id)
        assert [p.body for p in seen.posts] == ["Monday"]
        note = await mesh.call(c.CREATE_NOTE, "noah", workspace=ws_id, title="Terms", body="net 30")
        got = await pact.call(c.GET_NOTE, "yara", workspace=ws_id, note=note.id)
        assert got.body == "net 30"

    async def test_nobody_else_of_either_ecosystem_sees_it(self, mesh: Mesh) -> None:
        pact = Pact(mesh)
        await pact.set(AllianceStatus.ACTIVE)
        ws_id = await pact.connect()
        # a third person of each side, a broker, and yara through the other ecosystem
        for call in (
            mesh.call(c.GET_WORKSPACE, "chloe", workspace=ws_id),
            mesh.call(c.GET_WORKSPACE, "bruno", workspace=ws_id),
            pact.call(c.GET_WORKSPACE, "yusuf", workspace=ws_id),
            mesh.call_as(c.GET_WORKSPACE, mesh.token("yara", partner="yonder"), workspace=ws_id),
            pact.call(c.GET_WORKSPACE, "noah", workspace=ws_id),
        ):
            await denied(ErrorCode.NOT_FOUND, call)
        assert (await pact.call(c.LIST_WORKSPACES, "yusuf")).items == []

    async def test_the_allied_member_is_refused_while_it_is_not_active(self, mesh: Mesh) -> None:
        pact = Pact(mesh)
        await pact.set(AllianceStatus.ACTIVE)
        ws_id = await pact.connect()
        await pact.set(AllianceStatus.SUSPENDED)
        refused = await denied(
            ErrorCode.FORBIDDEN, pact.call(c.GET_WORKSPACE, "yara", workspace=ws_id)
        )
        assert "not active" in refused.detail
        await denied(
            ErrorCode.FORBIDDEN,
            pact.call(c.WS_CREATE_THREAD, "yara", workspace=ws_id, title="Still?", body="?"),
        )
        assert (await pact.call(c.LIST_WORKSPACES, "yara")).items == []
        # the member of the workspace's own ecosystem keeps it
        assert (await mesh.call(c.GET_WORKSPACE, "noah", workspace=ws_id)).id == ws_id
        await pact.set(AllianceStatus.ACTIVE)  # resumed: open to her again
        assert (await pact.call(c.GET_WORKSPACE, "yara", workspace=ws_id)).id == ws_id
        await pact.set(AllianceStatus.ENDED)
        await denied(ErrorCode.FORBIDDEN, pact.call(c.GET_WORKSPACE, "yara", workspace=ws_id))

    async def test_opened_across_without_any_alliance_is_closed_to_the_ally(
        self, mesh: Mesh
    ) -> None:
        pact = Pact(mesh)
        ws_id = await pact.connect()
        await denied(ErrorCode.FORBIDDEN, pact.call(c.GET_WORKSPACE, "yara", workspace=ws_id))


class TestNotificationsAcross:
    async def test_each_person_hears_in_their_own_ecosystem(self, mesh: Mesh) -> None:
        pact = Pact(mesh)
        data = IntroductionData(
            introduction=f"i-{uuid.uuid4().hex[:8]}",
            a="noah",
            a_partner="northwind",
            b="yara",
            b_partner="yonder",
            status="withdrawn",
            actor="olga",
            a_eco=mesh.eco,
            b_eco=pact.eco,
        )
        await pact.publish(
            IntroductionChanged(ecosystem=mesh.eco, subject=data.introduction, data=data)
        )

        async def heard() -> bool:
            return bool((await pact.call(c.LIST_NOTIFICATIONS, "yara")).items)

        await until(heard)
        [hers] = (await pact.call(c.LIST_NOTIFICATIONS, "yara")).items
        [his] = (await mesh.call(c.LIST_NOTIFICATIONS, "noah")).items
        for note in (hers, his):
            assert (note.action, note.content_id) == ("withdrawn", data.introduction)
        # yara's notification is not in the other ecosystem under her name
        stray = mesh.call_as(c.LIST_NOTIFICATIONS, mesh.token("yara", partner="yonder"))
        assert (await stray).items == []
