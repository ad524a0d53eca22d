"""Connector grants across an alliance in the portal: a partner admin of acme grants an
operation to a partner of globex from the connectors page; globex's people find it in
their own portal's catalogue with acme's brand. Terms that do not let the partner grant
across are refused in a sentence, and ending the alliance takes the entry away."""

from __future__ import annotations

from typing import Any

import httpx
from markupsafe import escape

from identity.cli.seed import ECO_NAME as ACME_NAME
from tests.portal.allied import ALLY, ALLY_NAME, PARTNER
from tests.portal.login import sign_in
from tests.portal.mesh import Mesh
from tests.portal.test_alliances import CONSOLE, post, terms
from tests.portal.test_alliances_directory import agreed
from tests.portal.test_connectors import eventually

OP = "fabrikam.demand-forecast"


async def grant(client: httpx.AsyncClient) -> httpx.Response:
    body = {"operation": OP, "grantee": PARTNER, "grantee_eco": ALLY}
    return await post(client, "/connectors", "/connectors/grants", body)


class TestCatalogueAcross:
    async def test_granted_across_is_listed_with_its_brand_until_the_alliance_ends(
        self, mesh: Mesh, globex: Mesh, demo: dict[str, Any]
    ) -> None:
        async with sign_in(mesh, "fatima") as fatima:
            # acme's terms let only contoso grant across: fabrikam's grant is refused
            async with agreed(mesh, globex, terms("ours", partners="contoso"), terms("theirs")):
                page = (await fatima.get("/connectors")).text
                assert f'<option value="{ALLY}">in {escape(ALLY_NAME)} (allied)</option>' in page
                refused = await grant(fatima)
                assert "Not done:" in refused.text and "fabrikam" in refused.text
                assert "Grant created" not in refused.text

            async with (
                agreed(mesh, globex, terms("ours", partners="*"), terms("theirs")) as ident,
                sign_in(globex, "gus") as gus,
            ):
                made = await grant(fatima)
                assert "Grant created" in made.text, made.text[:800]
                assert f'{PARTNER} <span class="brand-badge"' in made.text

                catalogue = (await gus.get("/connectors")).text
                row = next(r for r in catalogue.split("<tr>") if f"<code>{OP}</code>" in r)
                assert f"{escape(ACME_NAME)}</span>" in row and "granted" in row
                assert 'href="/allies/acme/companies/fabrikam"' in row
                assert f'<option value="{OP}"' not in catalogue  # called by back-ends only

                async with sign_in(mesh, "olivia") as acme:
                    page = f"{CONSOLE}/{ident}"
                    await post(acme, page, f"{page}/end", {"confirmed": "yes"})

                async def gone() -> bool:
                    return f"<code>{OP}</code>" not in (await gus.get("/connectors")).text

                await eventually(gone)

                async def paused() -> bool:  # the owner's grant stays, paused
                    page = (await fatima.get("/connectors")).text
                    return "paused: the alliance is not active" in page

                await eventually(paused)
