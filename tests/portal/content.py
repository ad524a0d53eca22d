"""Content the portal tests read: written through the gateway like any client would."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.portal.mesh import Mesh

NOAH_BIO = "Runs **cold chain** operations for Northwind."
THREAD_BODY = (
    "We are adding refrigerated warehousing and temperature monitoring for pharma shipments. "
    "Who needs cold chain capacity in the north region? Our temperature monitoring covers "
    "every pallet, and refrigerated trucks leave daily."
)


async def _ok(resp: httpx.Response) -> Any:
    assert resp.status_code < 300, f"{resp.request.method} {resp.request.url}: {resp.text}"
    return resp.json()


async def seed(mesh: Mesh) -> dict[str, Any]:
    """A forum thread by noah, noah's profile (bio visible to his company only), a private
    northwind–contoso workspace, and an introduction of noah and chloe by the broker."""
    s = mesh.subs
    async with mesh.api() as api:
        await _ok(
            await api.post(
                "/forums/categories",
                headers=mesh.bearer("olivia"),
                json={
                    "slug": "logistics",
                    "name": "Logistics",
                    "description": "Moving goods together",
                },
            )
        )
        await _ok(
            await api.patch(
                f"/people/{s['noah']}",
                headers=mesh.bearer("noah"),
                json={
                    "headline": "Cold chain lead at Northwind",
                    "bio": NOAH_BIO,
                    "skills": ["cold chain", "refrigerated warehousing"],
                    "offers": ["cold chain capacity"],
                    "regions": ["north"],
                    "visibility": {"bio": "company"},
                },
            )
        )
        thread = await _ok(
            await api.post(
                "/forums/categories/logistics/threads",
                headers=mesh.bearer("noah"),
                json={"title": "Cold chain capacity for pharma", "body": THREAD_BODY},
            )
        )
        await _ok(
            await api.post(
                f"/forums/threads/{thread['id']}/posts",
                headers=mesh.bearer("chloe"),
                json={"body": "Contoso needs **temperature monitoring** for vaccine parts."},
            )
        )
        workspace = await _ok(
            await api.post(
                "/workspaces",
                headers=mesh.bearer("nadia"),
                json={
                    "title": "Northwind and Contoso pilot",
                    "description": "Secret pilot",
                    "members": [{"person": s["carlos"]}],
                },
            )
        )
        intro = await _ok(
            await api.post(
                "/introductions",
                headers=mesh.bearer("bruno"),
                json={
                    "a": s["noah"],
                    "b": s["chloe"],
                    "note": "Cold chain meets vaccine parts",
                },
            )
        )
        await _wait_for_cloud(api, mesh, s["noah"])
    return {"thread": thread["id"], "workspace": workspace["id"], "intro": intro["id"]}


async def _wait_for_cloud(api: httpx.AsyncClient, mesh: Mesh, person: str) -> None:
    """Tag clouds follow collaboration events: wait until noah's thread reached his cloud."""
    for _ in range(100):
        card = await _ok(await api.get(f"/people/{person}/card", headers=mesh.bearer("chloe")))
        if card["cloud"]["posts"] > 0:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"the tag cloud never reflected the thread: {card}")
