"""Direct conversations: colleagues and connected people talk in one two-person workspace,
the same one each time; nobody else reads it, and strangers are told why they cannot."""

from __future__ import annotations

from contracts import headers
from contracts.errors import ErrorCode
from contracts.subjects import event_subject
from contracts.v1 import collaboration as c
from contracts.v1.matching import IntroductionConnected, IntroductionData
from tests.collaboration.conftest import Mesh, until
from tests.collaboration.test_forums import denied
from tests.collaboration.test_workspaces import meet


async def connect(mesh: Mesh, a: str, a_partner: str, b: str, b_partner: str) -> None:
    """Announce an accepted introduction of ``a`` and ``b`` as matching does, and wait until
    collaboration opened its workspace."""
    data = IntroductionData(
        introduction=f"i-{a}-{b}",
        a=a,
        a_partner=a_partner,
        b=b,
        b_partner=b_partner,
        status="connected",
        broker="bruno",
        note="Talk about pallets",
    )
    event = IntroductionConnected(ecosystem=mesh.eco, subject=data.introduction, data=data)
    await mesh.nc.jetstream().publish(
        event_subject(event.ecosystem, event.type),
        event.model_dump_json().encode(),
        headers={headers.MSG_ID: event.id},
    )

    async def opened() -> bool:
        spaces = (await mesh.call(c.LIST_WORKSPACES, a)).items
        return any(w.introduction == data.introduction for w in spaces)

    await until(opened)


class TestColleagues:
    async def test_one_conversation_per_pair_for_the_two_only(self, mesh: Mesh) -> None:
        await meet(mesh, "noah", "nadia")
        ws = await mesh.call(c.DIRECT_CONVERSATION, "noah", person="nadia")
        assert ws.direct is True
        assert [m.person for m in ws.members] == ["noah", "nadia"]
        assert ws.title == "Noah and Nadia"
        # Opening it again, from either side, gives the same conversation.
        assert (await mesh.call(c.DIRECT_CONVERSATION, "noah", person="nadia")).id == ws.id
        assert (await mesh.call(c.DIRECT_CONVERSATION, "nadia", person="noah")).id == ws.id
        listed = [w.id for w in (await mesh.call(c.LIST_WORKSPACES, "nadia")).items]
        assert listed == [ws.id]
        thread = await mesh.call(
            c.WS_CREATE_THREAD, "noah", workspace=ws.id, title="Pallets", body="Call at 3?"
        )
        await mesh.call(c.WS_CREATE_POST, "nadia", workspace=ws.id, thread=thread.id, body="Yes")
        seen = await mesh.call(c.WS_GET_THREAD, "nadia", workspace=ws.id, thread=thread.id)
        assert [p.body for p in seen.posts] == ["Yes"]
        # A third person reads nothing of it, whatever their roles.
        for outsider in ("carlos", "bruno", "olivia"):
            w = {"workspace": ws.id}
            await denied(ErrorCode.NOT_FOUND, mesh.call(c.GET_WORKSPACE, outsider, **w))
            await denied(ErrorCode.NOT_FOUND, mesh.call(c.WS_LIST_THREADS, outsider, **w))
            await denied(
                ErrorCode.NOT_FOUND,
                mesh.call(c.WS_GET_THREAD, outsider, workspace=ws.id, thread=thread.id),
            )
            spaces = (await mesh.call(c.LIST_WORKSPACES, outsider)).items
            assert ws.id not in [s.id for s in spaces]
        # It stays two: no member can bring a third in.
        err = await denied(
            ErrorCode.BAD_REQUEST, mesh.call(c.ADD_MEMBER, "noah", workspace=ws.id, person="carlos")
        )
        assert "stays between its two people" in err.detail

    async def test_one_who_left_comes_back_to_the_same_conversation(self, mesh: Mesh) -> None:
        await meet(mesh, "noah", "nadia")
        ws = await mesh.call(c.DIRECT_CONVERSATION, "noah", person="nadia")
        await mesh.call(c.REMOVE_MEMBER, "nadia", workspace=ws.id, person="nadia")
        await denied(ErrorCode.NOT_FOUND, mesh.call(c.GET_WORKSPACE, "nadia", workspace=ws.id))
        again = await mesh.call(c.DIRECT_CONVERSATION, "nadia", person="noah")
        assert again.id == ws.id
        assert sorted(m.person for m in again.members) == ["nadia", "noah"]


class TestWhoMayTalk:
    async def test_strangers_of_other_companies_are_told_to_get_introduced(
        self, mesh: Mesh
    ) -> None:
        await meet(mesh, "chloe", "felix")
        err = await denied(
            ErrorCode.FORBIDDEN, mesh.call(c.DIRECT_CONVERSATION, "chloe", person="felix")
        )
        assert "not connected yet" in err.detail and "introduce" in err.detail
        assert (await mesh.call(c.LIST_WORKSPACES, "chloe")).items == []

    async def test_an_accepted_introduction_connects_two_companies(self, mesh: Mesh) -> None:
        await meet(mesh, "noah", "chloe", "carlos")
        await denied(ErrorCode.FORBIDDEN, mesh.call(c.DIRECT_CONVERSATION, "noah", person="chloe"))
        await connect(mesh, "noah", "northwind", "chloe", "contoso")
        ws = await mesh.call(c.DIRECT_CONVERSATION, "chloe", person="noah")
        assert ws.direct and ws.partners == ["contoso", "northwind"]
        assert ws.introduction is None  # its own space, not the introduction's
        assert (await mesh.call(c.DIRECT_CONVERSATION, "noah", person="chloe")).id == ws.id
        await denied(ErrorCode.NOT_FOUND, mesh.call(c.GET_WORKSPACE, "bruno", workspace=ws.id))
        # The connection is theirs alone: chloe's colleague is still a stranger to noah.
        await denied(ErrorCode.FORBIDDEN, mesh.call(c.DIRECT_CONVERSATION, "noah", person="carlos"))

    async def test_oneself_unknown_people_and_operators(self, mesh: Mesh) -> None:
        await meet(mesh, "noah")
        await denied(ErrorCode.BAD_REQUEST, mesh.call(c.DIRECT_CONVERSATION, "noah", person="noah"))
        await denied(ErrorCode.NOT_FOUND, mesh.call(c.DIRECT_CONVERSATION, "noah", person="nobody"))
        operator = mesh.token("olivia", partner=None)
        await denied(
            ErrorCode.FORBIDDEN,
            mesh.call_as(c.DIRECT_CONVERSATION, operator, person="noah"),
        )
