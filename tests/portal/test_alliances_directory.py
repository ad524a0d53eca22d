"""Across an agreed alliance in the portal: a person of ``globex`` flags fields "share with
allied ecosystems" on the profile form; a member of ``acme`` finds them only when the
directory includes allied ecosystems, with their brand, and opens their allied profile and
hover card showing exactly the shared fields. Ending the alliance takes it all away."""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
from markupsafe import escape

from identity.cli.seed import ECO_NAME as ACME_NAME
from tests.portal.allied import ALLY, ALLY_NAME, PARTNER, PARTNER_NAME
from tests.portal.login import SignedIn, sign_in
from tests.portal.mesh import Mesh
from tests.portal.test_alliances import CONSOLE, alliance_id, post, terms
from tests.portal.test_connectors import eventually

FIELDS = ("headline", "bio", "skills", "needs", "offers", "interests", "industries", "regions")


@contextlib.asynccontextmanager
async def agreed(
    mesh: Mesh, globex: Mesh, acme_terms: list[Any], globex_terms: list[Any]
) -> AsyncIterator[str]:
    """An active alliance acme ↔ globex (acme proposes, globex accepts), ended afterwards."""
    async with sign_in(mesh, "olivia") as acme, sign_in(globex, "gina") as other:
        made = await post(acme, CONSOLE, CONSOLE, [("peer", ALLY), *acme_terms, *globex_terms])
        ident = alliance_id(made)
        page = f"{CONSOLE}/{ident}"
        accepted = await post(other, page, f"{page}/accept", {})
        assert "Alliance accepted" in accepted.text, accepted.text[:800]
        try:
            yield ident
        finally:
            await post(acme, page, f"{page}/end", {"confirmed": "yes"})


async def my_id(client: SignedIn) -> str:
    resp = await client.get("/me")
    found = re.search(r"/people/([^/?#]+)$", str(resp.url))
    assert found, resp.url
    return found.group(1)


async def share_profile(
    client: SignedIn, me: str, values: dict[str, str], shared: set[str]
) -> None:
    """Save the profile form with ``values``; tick "share with allied ecosystems" on ``shared``."""
    page = f"/people/{me}/edit"
    form = (await client.get(page)).text
    for field in FIELDS:
        assert f'<label for="ally_{field}">Share {field} with allied ecosystems</label>' in form
    data: dict[str, str] = {"allied_form": "1", **values}
    data.update({f"vis_{f}": "ecosystem" for f in FIELDS})
    data.update({f"ally_{f}": "1" for f in shared})
    saved = await post(client, page, page, data)
    assert saved.status_code == 200 and "Profile saved" in saved.text, saved.text[:800]


class TestFederatedDirectory:
    async def test_shared_fields_cross_with_the_brand_and_nothing_else(
        self, mesh: Mesh, globex: Mesh
    ) -> None:
        tag = uuid.uuid4().hex[:8]
        skill, secret = f"zebrafreight{tag}", f"privatebio{tag}"
        headline = f"Freight <em>lead</em> {tag}"
        shares_people = terms("ours", share="people")
        async with (
            agreed(mesh, globex, shares_people, terms("theirs", share="people")) as ident,
            sign_in(globex, "gus") as gus,
            sign_in(mesh, "nadia") as nadia,
        ):
            gus_id = await my_id(gus)
            await share_profile(
                gus,
                gus_id,
                {"headline": headline, "bio": secret, "skills": skill},
                {"headline", "skills"},
            )
            edit = (await gus.get(f"/people/{gus_id}/edit")).text  # the owner sees the flags
            assert 'id="ally_headline" name="ally_headline" value="1" checked' in edit
            assert 'id="ally_bio" name="ally_bio" value="1">' in edit

            async def found() -> str | None:
                page = await nadia.get("/directory", params={"q": skill, "allied": "1"})
                return page.text if "Gus Grant" in page.text else None

            listing = await eventually(found)
            assert f'href="/allies/{ALLY}/people/{gus_id}"' in listing
            assert f'data-card-ally="{ALLY}"' in listing
            assert f'<span class="brand-badge" title="From the allied ecosystem {ALLY}">' in listing
            assert str(escape(ALLY_NAME)) in listing and ALLY_NAME not in listing
            assert 'id="allied" name="allied" type="checkbox" value="1" checked' in listing
            local = await nadia.get("/directory", params={"q": skill})
            assert "Gus Grant" not in local.text and "brand-badge" not in local.text

            profile = await nadia.get(f"/allies/{ALLY}/people/{gus_id}")
            assert profile.status_code == 200
            assert str(escape(headline)) in profile.text and headline not in profile.text
            assert skill in profile.text and secret not in profile.text
            assert str(escape(ALLY_NAME)) in profile.text
            assert "Introduce Gus Grant" not in profile.text  # a member: no broker form

            card = await nadia.get(f"/api/cards/{gus_id}", params={"ally": ALLY})
            assert card.status_code == 200, card.text
            body = card.json()
            assert body["ecosystem_name"] == ALLY_NAME and body["headline"] == headline
            assert body["href"] == f"/allies/{ALLY}/people/{gus_id}"
            assert secret not in card.text

            introduce = f"/allies/{ALLY}/people/{gus_id}/introduce"
            refused = await post(nadia, "/", introduce, {"a": mesh.subs["nadia"]})
            assert refused.status_code == 403  # a member does not introduce people
            async with sign_in(mesh, "bruno") as broker:  # a broker may introduce across
                page = await broker.get(f"/allies/{ALLY}/people/{gus_id}")
                assert "Introduce Gus Grant" in page.text and 'id="intro-a"' in page.text
                proposed = await post(
                    broker, page.url.path, introduce, {"a": mesh.subs["nadia"], "note": tag}
                )
                assert "Introduction proposed" in proposed.text, proposed.text[:800]
                console = (await broker.get("/broker")).text  # listed with the brand
                assert f'href="/allies/{ALLY}/people/{gus_id}"' in console
                assert str(escape(ALLY_NAME)) in console
            inbox = (await nadia.get("/introductions")).text
            assert f'href="/allies/{ALLY}/people/{gus_id}"' in inbox
            assert str(escape(ALLY_NAME)) in inbox  # the other side's brand
            theirs = (await gus.get("/introductions")).text  # gus, in his own portal
            assert f'href="/allies/acme/people/{mesh.subs["nadia"]}"' in theirs
            assert f"{ACME_NAME}</span>" in theirs

            # both accept, each in their own portal: a workspace across, brands on members
            for client, box in ((nadia, inbox), (gus, theirs)):
                waiting = re.search(r'action="/introductions/([^/"]+)/accept"', box)
                assert waiting, box[:2000]
                accept = f"/introductions/{waiting.group(1)}/accept"
                answered = await post(client, "/introductions", accept, {})
                assert "You accepted the introduction" in answered.text

            async def shared() -> str | None:
                page = (await nadia.get("/workspaces")).text
                found = re.search(r'href="(/workspaces/[^"/]+)"', page)
                return found.group(1) if found else None

            workspace = (await nadia.get(await eventually(shared))).text
            members = workspace.split('id="h-members"', 1)[1].split("</section>", 1)[0]
            assert f'href="/allies/{ALLY}/people/{gus_id}"' in members
            assert str(escape(ALLY_NAME)) in members

            async with sign_in(mesh, "olivia") as acme:  # ending it takes it all away at once
                console = f"{CONSOLE}/{ident}"
                ended = await post(acme, console, f"{console}/end", {"confirmed": "yes"})
                assert "Alliance ended" in ended.text

            async def not_found() -> httpx.Response | None:  # once profile heard of the end
                resp = await nadia.get(f"/allies/{ALLY}/people/{gus_id}")
                return resp if resp.status_code == 404 else None

            gone = await eventually(not_found, timeout=5)
            assert secret not in gone.text and skill not in gone.text
            after = await nadia.get("/directory", params={"q": skill, "allied": "1"})
            assert "Gus Grant" not in after.text
            card = await nadia.get(f"/api/cards/{gus_id}", params={"ally": ALLY})
            assert card.status_code == 404

    async def test_terms_that_share_only_companies_show_no_people(
        self, mesh: Mesh, globex: Mesh
    ) -> None:
        tag = uuid.uuid4().hex[:8]
        skill = f"okapiroute{tag}"
        async with (
            agreed(mesh, globex, terms("ours"), terms("theirs", share="companies")),
            sign_in(globex, "gus") as gus,
            sign_in(mesh, "nadia") as nadia,
        ):
            gus_id = await my_id(gus)
            await share_profile(gus, gus_id, {"skills": skill}, {"skills"})
            page = await nadia.get("/directory", params={"q": skill, "allied": "1"})
            assert "Gus Grant" not in page.text
            refused = await nadia.get(f"/allies/{ALLY}/people/{gus_id}")
            assert refused.status_code == 404 and skill not in refused.text

    async def test_a_stranger_ecosystem_is_not_found(self, mesh: Mesh) -> None:
        async with sign_in(mesh, "nadia") as nadia:
            for path in (f"/allies/{ALLY}/people/someone", "/allies/nowhere/companies/x"):
                resp = await nadia.get(path)
                assert resp.status_code == 404, path
            card = await nadia.get("/api/cards/someone", params={"ally": "nowhere"})
            assert card.status_code == 404

    async def test_a_company_shares_its_description_and_keeps_its_needs(
        self, mesh: Mesh, globex: Mesh
    ) -> None:
        tag = uuid.uuid4().hex[:8]
        shared, kept = f"Globex moves <cargo> {tag}", f"secretneed{tag}"
        edit = f"/companies/{PARTNER}/edit"
        async with (
            agreed(mesh, globex, terms("ours"), terms("theirs", share="companies")),
            sign_in(globex, "gina") as gina,
            sign_in(mesh, "noah") as noah,
        ):
            form = (await gina.get(edit)).text
            assert '<label for="ally_description">Share description with allied' in form
            data = {"description": shared, "needs": kept, "allied_form": "1"}
            data.update({"ally_description": "1", "vis_description": "ecosystem"})
            data.update({"vis_needs": "ecosystem"})
            saved = await post(gina, edit, edit, data)
            assert "Company profile saved" in saved.text, saved.text[:800]

            async def listed() -> str | None:
                params = {"kind": "company", "q": tag, "allied": "1"}
                page = (await noah.get("/directory", params=params)).text
                return page if PARTNER_NAME in page else None

            page = await eventually(listed)
            assert f'href="/allies/{ALLY}/companies/{PARTNER}"' in page
            assert str(escape(ALLY_NAME)) in page
            profile = await noah.get(f"/allies/{ALLY}/companies/{PARTNER}")
            assert profile.status_code == 200
            assert str(escape(shared)) in profile.text and shared not in profile.text
            assert kept not in profile.text
