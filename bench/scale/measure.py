"""Latency of the pages people use, on one generated ecosystem, through the real request path.

The profile, collaboration and matching services run as their own processes on the
loaded databases, with a nats-server and a throwaway issuer (``bench.collaboration``'s
harness); the gateway runs as its own process (``bench.gateway``'s). Each call is made
as ``bench/profile.py`` and ``bench/collaboration.py`` make them, over the services'
NATS API with a member's token; the dashboard is one gateway mashup of the six. Calls
run one at a time (latency, not throughput), each by a different person drawn from the
whole ecosystem, after a warm-up.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import nats
from nats.aio.client import Client

from bench.collaboration import Signer, service_process, wait_ready
from bench.gateway import gateway_server, wait_ok
from bench.scale.other_rows import CATEGORIES
from bench.scale.shape import ECO, Shape, partner_of, person_id, thread_id
from contracts.claims import Role
from contracts.v1 import collaboration as cc
from contracts.v1 import matching as mc
from contracts.v1 import profile as pc
from mesh.client import call
from mesh.localnats import local_nats

SERVICES = ("profile", "collaboration", "matching")
Call = Callable[[int], Awaitable[object]]


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def rss_mib(pid: int, field: str = "VmRSS") -> float:
    """Resident set (``VmRSS``) or its peak (``VmHWM``) of a process, in MiB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def bodies(shape: Shape) -> dict[str, Callable[[int], tuple[Any, dict[str, Any]]]]:
    """Per call: (operation, request body) for the ``k``-th sample."""
    region = ("Nordics", "Benelux", "Bavaria", "Iberia")
    return {
        "directory_text": lambda k: (
            pc.DIRECTORY,
            {"eco": ECO, "q": ("cold chain", "machining", "coffee", "customs")[k % 4]},
        ),
        "directory_filters": lambda k: (
            pc.DIRECTORY,
            {"eco": ECO, "industry": "automotive", "region": region[k % 4], "sort": "name"},
        ),
        "person_card": lambda k: (
            pc.PERSON_CARD,
            {"eco": ECO, "person": person_id((k * 7919) % shape.people)},
        ),
        "thread_page": lambda k: (
            cc.GET_THREAD,
            {"eco": ECO, "thread": thread_id(0), "limit": 50, "offset": 0},
        ),
        "notifications": lambda k: (cc.LIST_NOTIFICATIONS, {"eco": ECO, "limit": 20}),
        "introductions_inbox": lambda k: (mc.LIST_INTRODUCTIONS, {"eco": ECO, "limit": 50}),
    }


def mashup_body(shape: Shape, k: int) -> dict[str, Any]:
    """The dashboard: the six calls in one gateway round trip (paths as the routes read)."""
    e = f"/v1/ecosystems/{ECO}"
    return {
        "requests": [
            {"id": "search", "path": f"{e}/directory", "query": {"q": "cold chain"}},
            {"id": "filter", "path": f"{e}/directory", "query": {"industry": "retail"}},
            {"id": "card", "path": f"{e}/people/{person_id((k * 7919) % shape.people)}/card"},
            {"id": "thread", "path": f"{e}/forums/threads/{thread_id(0)}", "query": {"limit": 50}},
            {"id": "notifications", "path": f"{e}/notifications", "query": {"limit": 20}},
            {"id": "introductions", "path": f"{e}/introductions", "query": {"limit": 50}},
        ]
    }


async def sample(one: Call, n: int, warmup: int) -> tuple[list[float], int]:
    for k in range(warmup):
        await one(k)
    out: list[float] = []
    for k in range(n):
        started = time.perf_counter()
        await one(warmup + k)
        out.append((time.perf_counter() - started) * 1000)
    return out, n


def figures(ms: list[float]) -> dict[str, float]:
    return {"p50_ms": round(statistics.median(ms), 2), "p95_ms": round(pct(ms, 95), 2)}


async def measure_calls(
    nc: Client, gateway: str, signer: Signer, shape: Shape, n: int
) -> dict[str, dict[str, float]]:
    viewers = [(k * 104_729) % shape.people for k in range(n + 20)]
    tokens = [signer.token(person_id(i), partner_of(shape, i), [Role.MEMBER]) for i in viewers]
    out: dict[str, dict[str, float]] = {}
    for name, make in bodies(shape).items():

        async def one(k: int, make: Any = make) -> None:
            op, body = make(k)
            await call(nc, op, body, tokens[k % len(tokens)], timeout=30)

        ms, _ = await sample(one, n, 10)
        out[name] = figures(ms)
    async with httpx.AsyncClient(base_url=gateway, timeout=30) as client:

        async def dashboard(k: int) -> None:
            r = await client.post(
                f"/v1/ecosystems/{ECO}/mashup",
                json=mashup_body(shape, k),
                headers={"Authorization": f"Bearer {tokens[k % len(tokens)]}"},
            )
            reply = r.json()
            if r.status_code != 200 or not reply["complete"]:  # e.g. a part timed out
                incomplete.append(r.status_code)

        incomplete: list[int] = []
        ms, _ = await sample(dashboard, n, 10)
        out["dashboard_mashup"] = {**figures(ms), "incomplete": float(len(incomplete))}
    return out


async def run_size(shape: Shape, urls: dict[str, str], n: int) -> dict[str, Any]:
    """Start the services on ``urls`` and measure every call ``n`` times."""
    signer = Signer()
    os.environ.setdefault("PM_DB_POOL_SIZE", "3")
    os.environ.setdefault("PM_DB_MAX_OVERFLOW", "2")
    with local_nats() as nats_url:
        common = {"NATS_URL": nats_url, "IDENTITY_URL": signer.identity_url, "LOG_LEVEL": "WARNING"}
        async with signer.serving():
            with contextlib.ExitStack() as stack:
                started = {
                    name: stack.enter_context(
                        service_process(name, {**common, "DATABASE_URL": urls[name]})
                    )
                    for name in SERVICES
                }
                nc = await nats.connect(nats_url)
                try:
                    t0 = time.perf_counter()
                    for name in SERVICES:
                        await wait_ready(nc, name, within=600)
                    ready_s = time.perf_counter() - t0
                    async with gateway_server(nats_url, signer.identity_url, True, False) as gw:
                        base = gw[0].split("/v1/", 1)[0]
                        auth = {"Authorization": f"Bearer {signer.token('x', 'c0', [Role.MEMBER])}"}
                        await wait_ok(gw[0], auth)
                        calls = await measure_calls(nc, base, signer, shape, n)
                        rss = {name: rss_mib(p.pid) for name, p in started.items()}
                        rss["gateway"] = rss_mib(gw[1])
                        peak = rss_mib(started["matching"].pid, "VmHWM")
                finally:
                    await nc.drain()
    return {
        "calls": calls,
        "services_ready_s": round(ready_s, 1),
        "rss_mib_after_load": rss,
        "matching_peak_rss_mib": peak,
        "samples_per_call": n,
        "categories": len(CATEGORIES),
    }
