"""Alliances: the federated directory against a local one, and how fast an ended alliance
stops every allied call.

**Federated search.** A real nats-server and a real profile service on SQLite hold three
layouts of the same total number of people with the same profiles: one ecosystem
(``local``, the baseline), two allied ecosystems and five allied ecosystems (the viewer's
own and one or four allies, people split evenly). Every person flags its fields "shared
with allied ecosystems"; the alliances are the ``AllianceChanged`` snapshots identity
publishes. The same directory queries (words, a region, an empty query) are asked of each
layout in alternating rounds (the machine's load drifts): the local one as a person of the
single ecosystem, the federated ones with ``allied`` as a person of the viewer ecosystem.
Reported: p50/p95 of each and the ratios federated/local (target: at most 2x).

**Cut-off.** The whole mesh as ``make run`` starts it (``partnermesh up`` in a subprocess,
its own ports and state), with its demo alliance between ``acme`` and ``meridian``. Each
round: the alliance is active, an allied card read (acme's northwind back-end reads a
meridian person's card through ``/allies/``) and a connector call with a token that
wideworld's back-end exchanged into acme before the end both succeed; then meridian's
operator ends the alliance at identity, and both calls are repeated until each is refused.
Reported: time from the end's reply to the first refusal of each (median and max; target
at most 1 s). The next round agrees a new alliance with the same terms.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any

from nats.aio.client import Client

from bench._alliance_cutoff import cutoff
from bench.profile import Keys, pct, profile_service, publish
from contracts.claims import Scope
from contracts.v1 import profile as c
from contracts.v1.alliances import (
    AllianceChanged,
    AllianceState,
    AllianceStatus,
    DirectionTerms,
    Sharing,
)
from contracts.v1.identity import PersonData, PersonRegistered
from mesh.client import call

LAYOUTS = {"local": 1, "allied_2": 2, "allied_5": 5}
SHARED = ["headline", "skills", "needs", "offers", "regions"]
PARTNERS = ("northwind", "contoso", "fabrikam")
SKILLS = [
    "Cold chain",
    "Customs brokerage",
    "Demand forecasting",
    "Injection moulding",
    "Air cargo",
    "Predictive maintenance",
    "Route planning",
    "Warehousing",
    "Anomaly detection",
    "Supplier audits",
]
REGIONS = ["Nordics", "Benelux", "DACH", "Iberia", "Baltics"]
QUERIES: list[dict[str, Any]] = [
    {"q": "cold chain"},
    {"q": "forecasting"},
    {"q": "customs brokerage"},
    {"q": ""},
    {"region": "Baltics"},
    {"q": "warehousing", "sort": "name"},
]


def ecos_of(layout: str) -> list[str]:
    """The layout's ecosystems, the viewer's first."""
    n = LAYOUTS[layout]
    return ["solo"] if n == 1 else [f"fed{n}-{chr(ord('a') + i)}" for i in range(n)]


def profile(i: int) -> dict[str, Any]:
    """The i-th person's profile, the same in every layout."""
    rnd = random.Random(i)
    skills = rnd.sample(SKILLS, 3)
    return {
        "headline": f"{skills[0]} lead",
        "bio": f"Works on {skills[0].lower()} and {skills[1].lower()} for partners.",
        "skills": skills,
        "needs": rnd.sample(SKILLS, 2),
        "offers": skills[:2],
        "regions": rnd.sample(REGIONS, 2),
        "allied": dict.fromkeys(SHARED, True),
    }


def alliance(viewer: str, ally: str) -> AllianceChanged:
    terms = DirectionTerms(share=Sharing.PEOPLE, roles=["member"], scopes=[Scope.DIRECTORY_READ])
    now = datetime.now(UTC)
    state = AllianceState(
        alliance=f"{viewer}-{ally}",
        ecosystems=[viewer, ally],
        names={viewer: viewer.title(), ally: ally.title()},
        status=AllianceStatus.ACTIVE,
        version=2,
        offered_by=viewer,
        terms={viewer: terms, ally: terms},
        changed_at=now,
        changed_by="bench",
        active_since=now,
    )
    return AllianceChanged(ecosystem=viewer, subject=state.alliance, data=state)


async def seed_layout(nc: Client, keys: Keys, layout: str, total: int) -> None:
    ecos = ecos_of(layout)
    for i in range(total):
        eco, partner = ecos[i % len(ecos)], PARTNERS[i % len(PARTNERS)]
        person = f"{layout}-p{i:05d}"
        data = PersonData(person=person, partner=partner, name=f"Person {i:05d}")
        await publish(nc, PersonRegistered(ecosystem=eco, data=data))
    for ally in ecos[1:]:
        await publish(nc, alliance(ecos[0], ally))
    for i in range(total):
        eco, partner = ecos[i % len(ecos)], PARTNERS[i % len(PARTNERS)]
        person = f"{layout}-p{i:05d}"
        body = {"eco": eco, "person": person, **profile(i)}
        token = keys.token(person, partner, eco)
        await retry(partial(call, nc, c.UPDATE_PERSON, body, token))


async def retry(fn: Callable[[], Awaitable[Any]], within: float = 60) -> Any:
    """``fn`` once its person's registration has arrived (the first calls may be 404)."""
    deadline = time.perf_counter() + within
    while True:
        try:
            return await fn()
        except Exception:
            if time.perf_counter() > deadline:
                raise
            await asyncio.sleep(0.05)


def search_body(layout: str, query: dict[str, Any]) -> dict[str, Any]:
    body = {"eco": ecos_of(layout)[0], "page_size": 20, **query}
    if LAYOUTS[layout] > 1:
        body["allied"] = True
    return body


async def check_federated(nc: Client, keys: Keys, layout: str, total: int) -> None:
    """The federated layout really searches its allies, and finds as many as the local one."""
    viewer = ecos_of(layout)[0]
    token = keys.token("viewer", "northwind", viewer)
    reply = await call(nc, c.DIRECTORY, search_body(layout, {"q": ""}), token)
    ecos = {e.ecosystem for e in reply.entries}
    if reply.total != total or len(ecos) != LAYOUTS[layout]:
        raise RuntimeError(f"{layout}: {reply.total} of {total} people from {sorted(ecos)}")


async def search_rounds(nc: Client, keys: Keys, rounds: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {name: [] for name in LAYOUTS}
    tokens = {name: keys.token("viewer", "northwind", ecos_of(name)[0]) for name in LAYOUTS}
    for r in range(rounds):
        order = list(LAYOUTS) if r % 2 == 0 else list(reversed(LAYOUTS))
        for name in order:
            for query in QUERIES:
                started = time.perf_counter()
                await call(nc, c.DIRECTORY, search_body(name, query), tokens[name])
                samples[name].append((time.perf_counter() - started) * 1000)
    return samples


async def federated_search(quick: bool) -> dict[str, Any]:
    total, rounds = (120, 20) if quick else (600, 100)
    ecos = tuple(eco for name in LAYOUTS for eco in ecos_of(name))
    keys = Keys(ecos)
    async with profile_service(keys) as nc:
        for name in LAYOUTS:
            await seed_layout(nc, keys, name, total)
        for name in LAYOUTS:
            await retry(partial(check_federated, nc, keys, name, total))
        samples = await search_rounds(nc, keys, rounds)
    out: dict[str, Any] = {"people_per_layout": total, "queries_per_layout": len(samples["local"])}
    base50, base95 = statistics.median(samples["local"]), pct(samples["local"], 95)
    for name, values in samples.items():
        p50, p95 = statistics.median(values), pct(values, 95)
        out[f"{name}_p50_ms"], out[f"{name}_p95_ms"] = round(p50, 2), round(p95, 2)
        if name != "local":
            out[f"{name}_p50_vs_local"] = round(p50 / base50, 2)
            out[f"{name}_p95_vs_local"] = round(p95 / base95, 2)
    return out


async def run(quick: bool) -> dict[str, Any]:
    return {"federated_search": await federated_search(quick), "cutoff": await cutoff(quick)}
