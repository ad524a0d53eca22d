"""Demo content of the matching service, seeded through the gateway.

Bruno (broker) runs the introduction optimiser over the demo profiles and approves
the best proposal, so the people concerned find an introduction in their inbox.
Profiles reach matching as events from the profile service, so the optimiser is
retried briefly until they are indexed; when none arrive in time Bruno introduces
Noah and Chloe by hand. Safe to run again: an existing introduction stops it early.
"""

from __future__ import annotations

import asyncio
import base64
import json

import httpx

ATTEMPTS = 8
PAUSE = 0.25


def _sub(token: str) -> str:
    payload = token.split(".")[1]
    payload += "=" * (-len(payload) % 4)
    return str(json.loads(base64.urlsafe_b64decode(payload))["sub"])


async def seed(api: httpx.AsyncClient, tokens: dict[str, str], eco: str) -> None:
    broker = {"Authorization": f"Bearer {tokens['bruno']}"}
    base = f"/v1/ecosystems/{eco}/introductions"
    existing = await api.get(base, headers=broker)
    if existing.status_code == 200 and existing.json().get("introductions"):
        return
    for _ in range(ATTEMPTS):
        r = await api.post(
            f"{base}/optimise", headers=broker, json={"capacity": 2, "min_score": 0.01}
        )
        proposals = r.json().get("proposals", []) if r.status_code == 200 else []
        if proposals:
            note = "You complement each other well; worth a call."
            await api.post(
                f"{base}/{proposals[0]['introduction']}/curate",
                headers=broker,
                json={"action": "approve", "note": note},
            )
            return
        await asyncio.sleep(PAUSE)
    note = "Logistics meets manufacturing."
    hand = {"a": _sub(tokens["noah"]), "b": _sub(tokens["chloe"]), "note": note}
    await api.post(base, headers=broker, json=hand)
