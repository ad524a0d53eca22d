"""Demo forums and a partnering workspace, created through the gateway like any client.

Idempotent enough to run twice: categories answer 409 the second time, threads and the
workspace are looked up by title before they are created.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx

CATEGORIES = [
    ("logistics", "Logistics", "Lanes, capacity, warehousing and customs"),
    ("manufacturing", "Manufacturing", "Capacity sharing, tooling, quality and suppliers"),
    ("analytics", "Analytics", "Forecasting, shared data and dashboards"),
]

# category, title, author, body, [(replier, body)]
THREADS: list[tuple[str, str, str, str, list[tuple[str, str]]]] = [
    (
        "logistics",
        "Cold-chain capacity Rotterdam → Lyon",
        "nadia",
        "We have **two reefer trailers** free on the Rotterdam → Lyon lane every Thursday.\n\n"
        "Anyone shipping temperature-controlled goods south? Happy to consolidate.",
        [
            (
                "carlos",
                "Contoso could fill one trailer with coated parts from March on. "
                "What are your temperature ranges?",
            ),
            (
                "fatima",
                "We track lane utilisation across the network: Thursday southbound "
                "runs at 61% on average, so consolidation would pay off.",
            ),
            ("noah", "Ranges are 2–8 °C and −18 °C. Customs pre-clearance is included."),
        ],
    ),
    (
        "manufacturing",
        "Sharing CNC capacity for short runs",
        "carlos",
        "Our 5-axis CNC cell has spare capacity on night shifts. Short runs (10–200 parts), "
        "aluminium and steel, ISO 9001 quality checks included.",
        [
            (
                "chloe",
                "Tooling changes take about 40 minutes, so batches above 20 parts "
                "are the sweet spot.",
            ),
            ("nadia", "Could Northwind pick up finished parts on the Lyon return leg?"),
        ],
    ),
    (
        "analytics",
        "Demand forecasting with shared shipment data",
        "fatima",
        "Fabrikam is piloting a **demand forecast** built on anonymised shipment volumes.\n\n"
        "- weekly granularity\n- per lane and product family\n- opt-in per partner",
        [
            ("felix", "First back-test: mean absolute percentage error of 8.4% over 12 weeks."),
            ("noah", "Northwind can share lane volumes through the connector API."),
            ("carlos", "Contoso is in for the manufacturing side — order intake by week."),
        ],
    ),
]

WORKSPACE_TITLE = "Northwind × Contoso: Rotterdam lane pilot"


def subject_of(token: str) -> str:
    """The ``sub`` of an access token (read, not verified: the gateway verifies)."""
    payload = token.split(".")[1]
    payload += "=" * (-len(payload) % 4)
    return str(json.loads(base64.urlsafe_b64decode(payload))["sub"])


async def _call(
    api: httpx.AsyncClient, token: str, method: str, path: str, body: dict[str, Any] | None = None
) -> dict[str, Any] | None:
    """One call; None when it conflicts with what is already there."""
    resp = await api.request(method, path, json=body, headers={"Authorization": f"Bearer {token}"})
    if resp.status_code == 409:
        return None
    resp.raise_for_status()
    result: dict[str, Any] = resp.json()
    return result


async def _seed_forums(api: httpx.AsyncClient, tokens: dict[str, str], eco: str) -> None:
    base = f"/v1/ecosystems/{eco}/forums"
    for slug, name, description in CATEGORIES:
        body = {"slug": slug, "name": name, "description": description}
        await _call(api, tokens["olivia"], "POST", f"{base}/categories", body)
    for category, title, author, text, replies in THREADS:
        listed = await _call(api, tokens[author], "GET", f"{base}/categories/{category}/threads")
        if any(t["title"] == title for t in (listed or {}).get("items", [])):
            continue
        thread = await _call(
            api, tokens[author], "POST", f"{base}/categories/{category}/threads",
            {"title": title, "body": text},
        )  # fmt: skip
        assert thread is not None
        for replier, reply in replies:
            await _call(api, tokens[replier], "POST", f"{base}/threads/{thread['id']}/posts",
                        {"body": reply})  # fmt: skip


async def _seed_workspace(api: httpx.AsyncClient, tokens: dict[str, str], eco: str) -> None:
    base = f"/v1/ecosystems/{eco}/workspaces"
    mine = await _call(api, tokens["nadia"], "GET", base)
    if any(w["title"] == WORKSPACE_TITLE for w in (mine or {}).get("items", [])):
        return
    members = [
        {"person": subject_of(tokens[who]), "partner": partner}
        for who, partner in (("carlos", "contoso"), ("noah", "northwind"), ("chloe", "contoso"))
    ]
    ws = await _call(api, tokens["nadia"], "POST", base, {
        "title": WORKSPACE_TITLE, "members": members,
        "description": "Private space for the cold-chain consolidation pilot.",
    })  # fmt: skip
    assert ws is not None
    space = f"{base}/{ws['id']}"
    carlos = subject_of(tokens["carlos"])
    await _call(api, tokens["nadia"], "POST", f"{space}/notes", {
        "title": "Pilot terms (draft)",
        "body": "- 8 Thursday runs, Rotterdam → Lyon\n- shared reefer, 2–8 °C\n"
                "- rate per pallet agreed per quarter\n\n@carlos please check the volumes.",
        "mentions": [carlos],
    })  # fmt: skip
    thread = await _call(api, tokens["carlos"], "POST", f"{space}/threads", {
        "title": "First run on 12 March",
        "body": "Contoso will have 14 pallets ready by Wednesday noon.",
    })  # fmt: skip
    assert thread is not None
    await _call(api, tokens["noah"], "POST", f"{space}/threads/{thread['id']}/posts",
                {"body": "Booked: pickup Wednesday 15:00, dock 4."})  # fmt: skip
    task = {"title": "Confirm pallet count for the first run", "assignee": carlos}
    await _call(api, tokens["nadia"], "POST", f"{space}/tasks", task)


async def seed(api: httpx.AsyncClient, tokens: dict[str, str], eco: str) -> None:
    await _seed_forums(api, tokens, eco)
    await _seed_workspace(api, tokens, eco)
