"""The operator's alliance console over plain HTTP against the real mesh: who may open it,
what a wrong proposal says, and an alliance's whole life between two ecosystems' portals
(``acme``'s and ``globex``'s), each operator with their own portal and token."""

from __future__ import annotations

import html
import re
from typing import Any
from urllib.parse import urlencode

import httpx
from markupsafe import escape

from identity.cli.seed import ECO_NAME as ACME_NAME
from tests.portal.allied import ALLY, ALLY_NAME
from tests.portal.login import csrf_of, sign_in
from tests.portal.mesh import Mesh
from tests.portal.test_pages import CONTROL, LABELLED

CONSOLE = "/operator/alliances"


async def post(client: httpx.AsyncClient, page: str, action: str, data: Any) -> httpx.Response:
    token = csrf_of((await client.get(page)).text)
    pairs = list(data.items()) if isinstance(data, dict) else list(data)
    body = urlencode([*pairs, ("csrf", token)])  # repeated fields: several boxes ticked
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    return await client.post(action, content=body, headers=form)


def terms(side: str, share: str = "people", intros: str = "open", **more: Any) -> list[Any]:
    fields = [
        (f"{side}_share", share),
        (f"{side}_roles", "member"),
        (f"{side}_scopes", "profile:read"),
        (f"{side}_scopes", "directory:read"),
        (f"{side}_introductions", intros),
        (f"{side}_curators", "owner"),
        (f"{side}_partners", more.pop("partners", "")),
    ]
    return fields + list(more.items())


def alliance_id(resp: httpx.Response) -> str:
    found = re.search(r"/operator/alliances/([A-Za-z0-9_-]+)", str(resp.url))
    assert found, resp.url
    return found.group(1)


class TestWhoMayUseTheConsole:
    async def test_members_brokers_and_partner_admins_are_refused(self, mesh: Mesh) -> None:
        for username in ("bruno", "nadia", "noah", "fatima"):
            async with sign_in(mesh, username) as client:
                assert (await client.get(CONSOLE)).status_code == 404, username
                assert (await client.get(f"{CONSOLE}/anything")).status_code == 404, username
                for action in (CONSOLE, f"{CONSOLE}/anything/accept", f"{CONSOLE}/x/counter"):
                    resp = await post(client, "/", action, {"peer": ALLY, "confirmed": "yes"})
                    assert resp.status_code == 404, (username, action)
                    assert "no such page" in resp.text.lower() or "not found" in resp.text.lower()

    async def test_the_operator_console_links_to_alliances(self, mesh: Mesh) -> None:
        async with sign_in(mesh, "olivia") as client:
            page = await client.get("/operator")
            assert f'href="{CONSOLE}"' in page.text
            console = await client.get(CONSOLE)
            assert console.status_code == 200
            assert "Propose an alliance" in console.text

    async def test_a_step_that_does_not_exist_is_not_found(self, mesh: Mesh) -> None:
        async with sign_in(mesh, "olivia") as client:
            resp = await post(client, CONSOLE, f"{CONSOLE}/whatever/explode", {})
            assert resp.status_code == 404


class TestProposalMistakesAreSentences:
    async def _propose(self, mesh: Mesh, data: list[Any]) -> httpx.Response:
        async with sign_in(mesh, "olivia") as client:
            return await post(client, CONSOLE, CONSOLE, data)

    async def test_no_peer(self, mesh: Mesh) -> None:
        resp = await self._propose(mesh, [("peer", ""), *terms("ours"), *terms("theirs")])
        assert resp.status_code == 422
        assert "Name the ecosystem to ally with." in resp.text

    async def test_itself_and_a_malformed_id(self, mesh: Mesh) -> None:
        resp = await self._propose(mesh, [("peer", "acme"), *terms("ours"), *terms("theirs")])
        assert resp.status_code == 422
        assert "An ecosystem cannot ally with itself" in resp.text
        resp = await self._propose(mesh, [("peer", "no such!"), *terms("ours"), *terms("theirs")])
        assert resp.status_code == 422
        assert "lower-case letters, digits and dashes" in resp.text
        assert '<option value="no such!" selected>' in resp.text  # what was sent stays

    async def test_bad_terms_name_their_direction_and_field(self, mesh: Mesh) -> None:
        data = [
            ("peer", ALLY),
            *terms("ours", ours_scopes="admin"),
            *terms("theirs", share="everything", theirs_roles="operator"),
        ]
        resp = await self._propose(mesh, data)
        assert resp.status_code == 422
        text = html.unescape(resp.text)
        assert "What we share: the admin scope never crosses an alliance." in text
        assert "What they share › what is shared: is not one of the choices." in text
        assert "What they share › roles: is not one of the choices." in text
        # nothing was proposed: the list has no alliance with globex yet
        assert f"/operator/alliances/{ALLY}" not in resp.text


async def _identity_has_alliances(mesh: Mesh) -> bool:
    async with httpx.AsyncClient(timeout=10) as http:
        resp = await http.get(f"{mesh.issuer}/admin/alliances", headers=mesh.bearer("olivia"))
    return resp.status_code == 200


class TestAnAllianceLifecycle:
    async def test_propose_counter_accept_suspend_resume_end(
        self, mesh: Mesh, globex: Mesh
    ) -> None:
        async with sign_in(mesh, "olivia") as acme, sign_in(globex, "gina") as other:
            console = (await acme.get(CONSOLE)).text  # the ecosystems one may propose to
            assert f'<option value="{ALLY}">{escape(ALLY_NAME)} ({ALLY})</option>' in console
            assert '<option value="acme">' not in console
            made = await post(
                acme, CONSOLE, CONSOLE, [("peer", ALLY), *terms("ours"), *terms("theirs")]
            )
            assert made.status_code == 200, made.text[:800]
            ident = alliance_id(made)
            assert "Alliance proposed" in made.text and "proposed" in made.text
            assert str(escape(ALLY_NAME)) in made.text  # the brand, escaped
            assert ALLY_NAME not in made.text
            # the proposer may withdraw but not accept its own offer
            assert f"{CONSOLE}/{ident}/accept" not in made.text
            refused = await post(acme, f"{CONSOLE}/{ident}", f"{CONSOLE}/{ident}/accept", {})
            assert refused.status_code in (403, 409), refused.status_code
            assert "Not done:" in refused.text

            # globex's operator sees it waiting for an answer and counters, pre-filled
            listing = await other.get(CONSOLE)
            assert "your answer is awaited" in listing.text
            review = await other.get(f"{CONSOLE}/{ident}")
            assert 'id="theirs-share-people" name="theirs_share" value="people" checked' in (
                review.text
            )
            countered = await post(
                other,
                f"{CONSOLE}/{ident}",
                f"{CONSOLE}/{ident}/counter",
                [*terms("ours", share="companies"), *terms("theirs")],
            )
            assert "Counter-offer sent" in countered.text, countered.text[:800]

            # acme accepts the counter-offer; the terms are globex's now
            page = await acme.get(f"{CONSOLE}/{ident}")
            assert f"{CONSOLE}/{ident}/accept" in page.text
            accepted = await post(acme, f"{CONSOLE}/{ident}", f"{CONSOLE}/{ident}/accept", {})
            assert "Alliance accepted" in accepted.text
            assert "active" in accepted.text

            # suspending asks first; nothing changes until confirmed
            ask = await post(other, f"{CONSOLE}/{ident}", f"{CONSOLE}/{ident}/suspend", {})
            assert "Please confirm" in ask.text and 'name="confirmed" value="yes"' in ask.text
            assert "status-active" in (await other.get(f"{CONSOLE}/{ident}")).text
            done = await post(
                other, f"{CONSOLE}/{ident}", f"{CONSOLE}/{ident}/suspend", {"confirmed": "yes"}
            )
            assert "Alliance suspended" in done.text and "status-suspended" in done.text
            # only the side that suspended may resume it
            page = await acme.get(f"{CONSOLE}/{ident}")
            assert f"{CONSOLE}/{ident}/resume" not in page.text and "only they may" in page.text
            refused = await post(
                acme, f"{CONSOLE}/{ident}", f"{CONSOLE}/{ident}/resume", {"confirmed": "yes"}
            )
            assert refused.status_code == 403 and "Not done:" in refused.text
            resumed = await post(
                other, f"{CONSOLE}/{ident}", f"{CONSOLE}/{ident}/resume", {"confirmed": "yes"}
            )
            assert "Alliance resumed" in resumed.text and "status-active" in resumed.text
            ended = await post(
                acme, f"{CONSOLE}/{ident}", f"{CONSOLE}/{ident}/end", {"confirmed": "yes"}
            )
            assert "Alliance ended" in ended.text and "status-ended" in ended.text
            # final: no more steps, and both operators read the same trail
            assert f"{CONSOLE}/{ident}/resume" not in ended.text
            for client, them in ((acme, ALLY_NAME), (other, ACME_NAME)):
                trail = (await client.get(f"{CONSOLE}/{ident}")).text
                section = trail.split('id="h-audit"', 1)[1].split("</section>", 1)[0]
                actions = re.findall(r"<strong>(\w+)</strong>", section)
                assert actions == [
                    "proposed", "countered", "accepted", "suspended", "resumed", "ended"
                ], actions  # fmt: skip
                assert f"an operator of {escape(them)}" in section
                mine = "Olivia Operator" if client is acme else "Gina Gold"
                assert f"by {mine}" in section  # this side's operators by name

        async with sign_in(globex, "gus") as member:  # a member of the other side: refused
            assert (await member.get(f"{CONSOLE}/{ident}")).status_code == 404

    async def test_an_ecosystem_that_does_not_exist_is_refused_as_a_sentence(
        self, mesh: Mesh
    ) -> None:
        async with sign_in(mesh, "olivia") as client:
            resp = await post(
                client, CONSOLE, CONSOLE, [("peer", "nowhere"), *terms("ours"), *terms("theirs")]
            )
            assert resp.status_code in (404, 409, 422), resp.status_code
            assert "Not proposed:" in resp.text
            assert '<option value="nowhere" selected>' in resp.text


def unlabelled(page: str) -> list[str]:
    """Form controls of the page without a label naming them (hidden ones need none)."""
    labelled = set(LABELLED.findall(page))
    missing = []
    for _tag, attrs in CONTROL.findall(page):
        ident = re.search(r'\bid="([^"]+)"', attrs)
        if 'type="hidden"' not in attrs and not (ident and ident.group(1) in labelled):
            missing.append(attrs)
    return missing


class TestLabels:
    async def test_every_control_of_the_console_and_the_sharing_form_is_labelled(
        self, mesh: Mesh
    ) -> None:
        async with sign_in(mesh, "olivia") as client:
            for path in (CONSOLE, f"/people/{mesh.subs['olivia']}/edit", "/directory"):
                page = await client.get(path)
                assert page.status_code == 200, path
                assert not unlabelled(page.text), (path, unlabelled(page.text))
            assert 'for="ours-scope-profile-read"' in (await client.get(CONSOLE)).text
