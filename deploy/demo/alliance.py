"""The demo alliance: Meridian Trade Network allied with the ACME Partner Network.

Seeded through the public APIs like any client would, after both ecosystems' own content:

- meridian's profiles (importers and air cargo), written by each person and company admin;
- the alliance, agreed through identity's lifecycle: acme's operator (olivia) proposes the
  terms below at ``/eco/acme/admin/alliances``, meridian's operator (mira) accepts them;
- per-field consent: some people flag fields "shared with allied ecosystems" (``allied``
  in their profile patch), others flag nothing and stay invisible across the alliance;
- a connector grant across: contoso (acme) grants ``contoso.stock-level`` to wideworld
  (meridian), whose back-end invokes it with its own token exchanged into acme;
- an introduction across: acme's broker introduces Nadia to Wanda, meridian's broker
  approves it (the terms name the owner's brokers as curators), both people may accept.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from deploy.demo.profile import seed_profiles, subject

ECO, ALLY = "acme", "meridian"
ALLY_NAME = "Meridian Trade Network"
ALLY_PEOPLE = ("mira", "bastian", "wanda", "walter", "tara", "theo")
OPERATORS = {ECO: "olivia", ALLY: "mira"}

PEOPLE: dict[str, dict[str, Any]] = {
    "mira": {
        "headline": "Network operator, Meridian Trade Network",
        "bio": "Runs Meridian's partner programme for importers and carriers around the Baltic.",
        "skills": ["Partner programmes", "Trade compliance"],
        "interests": ["Alliances between partner networks"],
        "industries": ["Logistics"],
        "regions": ["Baltics", "Nordics"],
        "languages": ["English", "Portuguese"],
    },
    "bastian": {
        "headline": "Partner broker at Meridian: air freight and customs",
        "bio": "Former freight forwarder; curates introductions between Meridian's members.",
        "skills": ["Air freight", "Partner verification"],
        "interests": ["Cold chain", "Customs digitisation"],
        "industries": ["Logistics"],
        "regions": ["Baltics"],
        "languages": ["English", "German"],
    },
    "wanda": {
        "headline": "Import operations lead, Wide World Importers",
        "bio": "Imports medical devices and spare parts into the Baltics; needs reliable "
        "cold chain logistics from the Benelux ports.",
        "skills": ["Import operations", "Customs brokerage", "Supplier sourcing"],
        "needs": ["Cold chain logistics", "Contract manufacturing"],
        "offers": ["Bonded warehousing in Gdansk", "Import clearance"],
        "industries": ["Logistics", "Wholesale"],
        "regions": ["Baltics", "Poland"],
        "languages": ["English", "Polish"],
    },
    "walter": {
        "headline": "Logistics analyst, Wide World Importers",
        "bio": "Landed-cost models and carrier scorecards for cargo from Asia.",
        "skills": ["Landed cost analysis", "Carrier scorecards"],
        "needs": ["Demand forecasting"],
        "offers": ["Cargo data"],
        "industries": ["Logistics"],
        "regions": ["Poland"],
        "languages": ["English", "Mandarin"],
    },
    "tara": {
        "headline": "Head of air cargo sales, Tailspin Air Cargo",
        "bio": "Temperature-controlled air cargo between Riga, Frankfurt and Rotterdam.",
        "skills": ["Air cargo", "Cold chain"],
        "needs": ["ETA prediction models", "Cross-docking partners"],
        "offers": ["Temperature-controlled air cargo", "Charter flights"],
        "industries": ["Aviation", "Logistics"],
        "regions": ["Baltics", "DACH"],
        "languages": ["English", "Latvian"],
    },
    "theo": {
        "headline": "Ground handling supervisor, Tailspin Air Cargo",
        "bio": "Keeps pallets moving on the apron in Riga.",
        "skills": ["Ground handling", "Dangerous goods"],
        "needs": ["Telematics dashboards"],
        "offers": ["Ground handling"],
        "industries": ["Aviation"],
        "regions": ["Baltics"],
        "languages": ["English", "Japanese"],
    },
}

COMPANIES: dict[str, tuple[str, dict[str, Any]]] = {
    "wideworld": (
        "wanda",
        {
            "description": "Wide World Importers: medical devices and spare parts into the "
            "Baltics, bonded warehousing in Gdansk.",
            "capabilities": ["Import clearance", "Bonded warehousing"],
            "needs": ["Cold chain logistics", "Contract manufacturing"],
            "offers": ["Import clearance", "Warehousing"],
            "certifications": ["AEO"],
            "industries": ["Logistics", "Wholesale"],
            "regions": ["Baltics", "Poland"],
            "size": "201-1000",
        },
    ),
    "tailspin": (
        "tara",
        {
            "description": "Tailspin Air Cargo: temperature-controlled air cargo and charters "
            "between Riga, Frankfurt and Rotterdam.",
            "capabilities": ["Air cargo", "Cold chain", "Charter flights"],
            "needs": ["ETA prediction", "Cross-docking"],
            "offers": ["Air cargo", "Ground handling"],
            "certifications": ["IATA CEIV Pharma"],
            "industries": ["Aviation", "Logistics"],
            "regions": ["Baltics", "DACH"],
            "size": "51-200",
        },
    ),
}

# Per-field consent: what each person shares with allied ecosystems. Walter, Theo and
# Noah flag nothing, so they never appear across the alliance whatever its terms say.
ALLIED_PEOPLE: dict[str, list[str]] = {
    "wanda": ["headline", "skills", "needs", "offers", "regions"],
    "tara": ["headline", "skills", "offers"],
    "bastian": ["headline", "skills"],
    "nadia": ["headline", "skills", "offers", "regions"],
    "carlos": ["headline", "needs", "offers"],
    "bruno": ["headline", "skills"],
}
ALLIED_COMPANIES: dict[str, tuple[str, list[str]]] = {
    "wideworld": ("wanda", ["description", "offers", "regions"]),
    "contoso": ("carlos", ["description", "capabilities", "offers"]),
}

# What each side shares with and grants to the other (per owner ecosystem).
TERMS: dict[str, dict[str, Any]] = {
    ECO: {
        "share": "people",
        "roles": ["member", "partner_admin"],
        "scopes": ["directory:read", "profile:read", "connector:read", "connector:invoke"],
        "introductions": "curated",
        "curators": "owner",
        "connector_partners": ["contoso"],
    },
    ALLY: {
        "share": "people",
        "roles": ["member"],
        "scopes": ["directory:read", "profile:read"],
        "introductions": "curated",
        "curators": "owner",
        "connector_partners": [],
    },
}
# an introduction across: acme's broker introduces Nadia (cold chain) to Wanda (who needs
# it); the terms make meridian's brokers curate it, so Bastian approves it; Nadia and Wanda
# each accept in their own ecosystem (left to the visitor)
INTRO = {"broker": "bruno", "a": "nadia", "b": "wanda", "curator": "bastian"}
INTRO_NOTE = "Wanda imports medical parts through Rotterdam; Nadia runs cold chain there."
# contoso's stock level, granted across to wideworld (its importer asks before ordering)
GRANT = {"operation": "contoso.stock-level", "grantor": "carlos", "grantee": "wideworld"}


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# Each service hears that the alliance is active from identity's event a moment after the
# accept (its projection, ``mesh.alliances``) and refuses acts across until then.
ACROSS_WAIT_S = 60.0
NOT_YET = (403, 404, 409)


def _refusal(response: httpx.Response) -> RuntimeError:
    return RuntimeError(
        f"{response.request.method} {response.request.url.path}: "
        f"{response.status_code} {response.text[:300]}"
    )


def _ok(response: httpx.Response) -> dict[str, Any]:
    if response.status_code >= 400 and response.status_code != 409:
        raise _refusal(response)
    body: dict[str, Any] = response.json() if response.content else {}
    return body


async def _across(
    send: Callable[[], Awaitable[httpx.Response]],
    done: Callable[[], Awaitable[bool]] | None = None,
) -> dict[str, Any]:
    """An act across the alliance, sent again while the service refuses it for not having
    heard of the alliance yet (or until ``done`` says an earlier try went through), for
    at most :data:`ACROSS_WAIT_S`."""
    deadline = time.monotonic() + ACROSS_WAIT_S
    while True:
        response = await send()
        if response.status_code < 400:
            body: dict[str, Any] = response.json() if response.content else {}
            return body
        if done is not None and await done():
            return {}
        if response.status_code not in NOT_YET or time.monotonic() > deadline:
            raise _refusal(response)
        await asyncio.sleep(0.25)


async def agree(identity: httpx.AsyncClient, olivia: str, mira: str) -> dict[str, Any]:
    """The alliance between acme and meridian, active: proposed by acme's operator with
    :data:`TERMS`, accepted by meridian's. A restart keeps the one already agreed."""
    mine = f"/eco/{ECO}/admin/alliances"
    listed = await identity.get(mine, headers=_auth(olivia))
    _ok(listed)
    for alliance in listed.json():
        if ALLY in alliance["ecosystems"] and alliance["status"] == "active":
            return dict(alliance)
    proposed = _ok(
        await identity.post(mine, json={"peer": ALLY, "terms": TERMS}, headers=_auth(olivia))
    )
    theirs = f"/eco/{ALLY}/admin/alliances/{proposed['alliance']}/accept"
    return _ok(await identity.post(theirs, json={}, headers=_auth(mira)))


async def flag_fields(api: httpx.AsyncClient, tokens: dict[str, str]) -> None:
    """Per-field consent: the fields each person and company shares with allied ecosystems."""
    for username, fields in ALLIED_PEOPLE.items():
        eco = ALLY if username in ALLY_PEOPLE else ECO
        token = tokens[username]
        path = f"/v1/ecosystems/{eco}/people/{subject(token)}"
        _ok(
            await api.patch(
                path, json={"allied": dict.fromkeys(fields, True)}, headers=_auth(token)
            )
        )
    for partner, (admin, fields) in ALLIED_COMPANIES.items():
        eco = ALLY if admin in ALLY_PEOPLE else ECO
        path = f"/v1/ecosystems/{eco}/partners/{partner}/profile"
        body = {"allied": dict.fromkeys(fields, True)}
        _ok(await api.patch(path, json=body, headers=_auth(tokens[admin])))


async def grant_across(api: httpx.AsyncClient, grantor: str) -> None:
    """contoso's stock level granted to meridian's wideworld (once)."""
    path = f"/v1/ecosystems/{ECO}/operations/{GRANT['operation']}/grants"

    async def granted() -> bool:
        existing = _ok(await api.get(path, headers=_auth(grantor)))
        return any(
            (grant["grantee"], grant.get("grantee_eco")) == (GRANT["grantee"], ALLY)
            and not grant["revoked_at"]
            for grant in existing.get("items", [])
        )

    if await granted():
        return
    body = {
        "grantee": GRANT["grantee"],
        "grantee_eco": ALLY,
        "response_fields": ["sku", "available"],
    }
    await _across(lambda: api.post(path, json=body, headers=_auth(grantor)), granted)


async def introduce(api: httpx.AsyncClient, tokens: dict[str, str]) -> str:
    """The introduction across (once), approved by the curating side; returns its id."""
    a, b = subject(tokens[INTRO["a"]]), subject(tokens[INTRO["b"]])
    broker = _auth(tokens[INTRO["broker"]])
    mine = f"/v1/ecosystems/{ECO}/introductions"
    listed = _ok(await api.get(mine, params={"person": a}, headers=broker))
    for intro in listed.get("introductions", []):
        if intro["b"] == b and intro["status"] not in ("declined", "rejected", "withdrawn"):
            return str(intro["id"])
    body = {"a": a, "b": b, "b_eco": ALLY, "note": INTRO_NOTE}
    intro = await _across(lambda: api.post(mine, json=body, headers=broker))
    if ALLY in intro.get("awaiting", []):
        curate = f"/v1/ecosystems/{ALLY}/introductions/{intro['id']}/curate"
        curator = _auth(tokens[INTRO["curator"]])
        await _across(lambda: api.post(curate, json={"action": "approve"}, headers=curator))
    return str(intro["id"])


async def seed(
    api: httpx.AsyncClient,
    identity: httpx.AsyncClient,
    tokens: dict[str, str],
    ally_tokens: dict[str, str],
) -> dict[str, Any]:
    """Meridian's content, the alliance, the flags and the grant across; returns what the
    start-up banner shows (the alliance's id, the demo people's ids)."""
    await seed_profiles(api, ally_tokens, ALLY, PEOPLE, COMPANIES)
    alliance = await agree(identity, tokens[OPERATORS[ECO]], ally_tokens[OPERATORS[ALLY]])
    everyone = {**tokens, **ally_tokens}
    await flag_fields(api, everyone)
    await grant_across(api, tokens[GRANT["grantor"]])
    return {
        "alliance": alliance["alliance"],
        "introduction": await introduce(api, everyone),
        "ecosystem": ALLY,
        "name": ALLY_NAME,
        "logins": list(ALLY_PEOPLE),
        "people": {u: subject(t) for u, t in everyone.items()},
    }
