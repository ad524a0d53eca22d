"""Overload: what one gateway does with more concurrent requests than it can serve.

Same set-up as the gateway area (nats-server, a JWKS issuer, the profile service and
gateways as their own processes; an authenticated echo through gateway, NATS and
service), with a closed-loop generator that reports admitted and refused requests apart
(``bench/_closedloop.py``). In one run:

1. The unloaded p99 (one connection), then the sustainable concurrency: the highest of
   1, 2, 4, 8, … connections whose p99 stays within twice the unloaded p99, against a
   gateway without a bound (``PM_GATEWAY_MAX_IN_FLIGHT=0``).
2. At three times that concurrency, one client per connection (its own token), the same
   load in each round, one case after the other, with the unloaded p99 measured again
   first (the machine's noise drifts): (i) shedding off (no bound); shedding on (the
   bound set to the sustainable concurrency) with (ii) clients that honour Retry-After
   and (iii) clients that send a refused request again at once (a naive client, or an
   attacker), beside the same against a gateway that refuses every request at once
   (``PM_GATEWAY_REPEAT_REFUSAL_DELAY_S=0``: what the wait before a repeat refusal is
   worth); and, for the client share, (iv) all connections one client retrying at once.
   Per case: p50/p99 of admitted requests, p99 ÷ the round's unloaded p99, the share
   refused (503), p50/p99 of refusals, and whether the target holds.
3. The same at ``HEAVY`` connections (the 300 of the overload first reported).

Every figure is the median of the rounds. Target: admitted p99 within twice the
unloaded p99, refusals' p99 within 50 ms.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from bench.gateway import ECO, Issuer, cpu_seconds, gateway_env, median, process, serve, wait_ok
from gateway.settings import MAX_IN_FLIGHT
from mesh.localnats import free_port, local_nats

LEVELS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
HEAVY = 300
P99_FACTOR = 2.0
REFUSAL_P99_TARGET_MS = 50.0

Headers = dict[str, str] | list[dict[str, str]]


async def closed_loop(
    url: str, headers: Headers, seconds: float, conns: int, honour: bool = False
) -> Any:
    """One run of the generator in its own process."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench._closedloop",
        url,
        "-",  # the headers on standard input: one token per connection is too long for argv
        str(seconds),
        str(conns),
        *(["--honour-retry-after"] if honour else []),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    return json.loads((await proc.communicate(json.dumps(headers).encode()))[0])


async def p99_of(
    url: str, headers: dict[str, str], seconds: float, conns: int, rounds: int
) -> float:
    runs = [await closed_loop(url, headers, seconds, conns) for _ in range(rounds)]
    return median([r["admitted"]["p99_ms"] for r in runs])


async def sustainable(
    url: str, headers: dict[str, str], seconds: float, rounds: int
) -> tuple[float, int, dict[str, float]]:
    """The unloaded p99, the sustainable concurrency and the p99 of each level tried."""
    unloaded = await p99_of(url, headers, seconds, 1, rounds)
    tried: dict[str, float] = {"1": unloaded}
    best = 1
    for conns in LEVELS[1:]:
        p99 = tried[str(conns)] = await p99_of(url, headers, seconds, conns, rounds)
        if p99 > P99_FACTOR * unloaded:
            break
        best = conns
    return unloaded, best, tried


@contextlib.asynccontextmanager
async def gateway(
    nats_url: str, issuer_url: str, max_in_flight: int, repeat_delay: bool = True
) -> AsyncIterator[tuple[str, int]]:
    port = free_port()
    env = gateway_env(nats_url, issuer_url, port, cache=True)
    env["PM_GATEWAY_MAX_IN_FLIGHT"] = str(max_in_flight)
    if not repeat_delay:  # every refusal at once, as before repeat refusals waited
        env["PM_GATEWAY_REPEAT_REFUSAL_DELAY_S"] = "0"
    env["PM_GATEWAY_LOG_LEVEL"] = "WARNING"
    async with process(["-m", "gateway"], env) as pid:
        yield f"http://127.0.0.1:{port}/v1/ecosystems/{ECO}/echo?message=hi", pid


def medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    def med(get: Any) -> float:
        return round(median([get(r) for r in runs]), 2)

    return {
        "admitted_p50_ms": med(lambda r: r["admitted"]["p50_ms"]),
        "admitted_p99_ms": med(lambda r: r["admitted"]["p99_ms"]),
        "admitted_max_ms": med(lambda r: r["admitted"]["max_ms"]),
        "admitted_rps": med(lambda r: r["admitted"]["count"] / r["requests"] * r["rps"]),
        "refused_share": round(median([r["refused_share"] for r in runs]), 4),
        "refused_p50_ms": med(lambda r: r["refused"]["p50_ms"]),
        "refused_p99_ms": med(lambda r: r["refused"]["p99_ms"]),
        "other_statuses": [r["other_statuses"] for r in runs if r["other_statuses"]],
        "connection_errors": sum(r["connection_errors"] for r in runs),
        "gateway_cpu_us_per_request": med(lambda r: r["gateway_cpu_us_per_request"]),
    }


# What is compared under the same load: (label, gateway, clients honour Retry-After,
# one client per connection (else all connections are one client)).
CASES = (
    ("i_shedding_off", "off", False, True),
    ("ii_shedding_on_clients_honour_retry_after", "on", True, True),
    ("iii_shedding_on_clients_retry_at_once", "on", False, True),
    # What the wait before a repeat refusal is worth: (iii) with every refusal at once.
    ("iii_without_repeat_refusal_delay", "on_at_once", False, True),
    ("iv_shedding_on_one_client_retries_at_once", "on", False, False),
)


async def loaded(
    target: tuple[str, int], headers: Headers, seconds: float, conns: int, honour: bool
) -> dict[str, Any]:
    """One run, with the CPU the gateway spent per request (admitted or refused)."""
    url, pid = target
    before = cpu_seconds(pid)
    run: dict[str, Any] = await closed_loop(url, headers, seconds, conns, honour)
    spent = cpu_seconds(pid) - before
    run["gateway_cpu_us_per_request"] = spent / max(1, run["requests_with_warmup"]) * 1e6
    return run


def verdict(case: dict[str, Any]) -> dict[str, bool]:
    admitted = case["admitted_p99_ratio_to_unloaded"] <= P99_FACTOR
    refusals = not case["refused_share"] or case["refused_p99_ms"] <= REFUSAL_P99_TARGET_MS
    return {"admitted_p99": admitted, "refused_p99": refusals, "pass": admitted and refusals}


async def compare(
    urls: dict[str, tuple[str, int]],
    clients: list[dict[str, str]],
    conns: int,
    seconds: float,
    rounds: int,
) -> dict[str, Any]:
    """Every case under the same load, one after the other in each round, after the
    unloaded p99 of that round."""
    runs: dict[str, list[dict[str, Any]]] = {case[0]: [] for case in CASES}
    unloaded: list[float] = []
    ratios: dict[str, list[float]] = {case[0]: [] for case in CASES}
    for _ in range(rounds):
        base = (await closed_loop(urls["off"][0], clients[0], seconds, 1))["admitted"]["p99_ms"]
        unloaded.append(base)
        for label, gateway_, honour, apart in CASES:
            headers: Headers = clients[:conns] if apart else clients[0]
            run = await loaded(urls[gateway_], headers, seconds, conns, honour)
            runs[label].append(run)
            ratios[label].append(run["admitted"]["p99_ms"] / base)
    out: dict[str, Any] = {"connections": conns, "unloaded_p99_ms": round(median(unloaded), 2)}
    for label, _, _, _ in CASES:
        out[label] = medians(runs[label])
        out[label]["admitted_p99_ratio_to_unloaded"] = round(median(ratios[label]), 2)
        out[label]["target"] = verdict(out[label])
    return out


async def run(quick: bool) -> dict[str, Any]:
    search_s, load_s, rounds = (1.5, 3, 1) if quick else (2, 5, 3)
    load_before = os.getloadavg()
    issuer = Issuer()
    with local_nats() as nats_url, tempfile.TemporaryDirectory() as tmp:
        async with serve(issuer.app) as issuer_url, contextlib.AsyncExitStack() as stack:
            issuer.url = issuer_url
            auth = {"Authorization": f"Bearer {issuer.token()}"}
            clients = [auth] + [
                {"Authorization": f"Bearer {issuer.token(f'bench-client-{i}')}"}
                for i in range(1, HEAVY)
            ]
            profile_env = {
                "PM_PROFILE_NATS_URL": nats_url,
                "PM_PROFILE_IDENTITY_URL": issuer_url,
                "PM_PROFILE_DATABASE_URL": f"sqlite+aiosqlite:///{Path(tmp) / 'profile.db'}",
                "PM_PROFILE_LOG_LEVEL": "WARNING",
                # The gateway is what is measured: the service's own bound stays out of the way.
                "PM_PROFILE_MAX_CONCURRENCY": "100000",
            }
            await stack.enter_async_context(process(["-m", "services.profile"], profile_env))
            off, off_pid = await stack.enter_async_context(gateway(nats_url, issuer_url, 0))
            await wait_ok(off, auth, within=120)  # a loaded machine starts processes slowly
            await closed_loop(off, auth, 1, 8)  # warm up (JWKS, caches, pools)
            unloaded, best, tried = await sustainable(off, auth, search_s, rounds)
            # What the default bound lets through: the p99 with that many in flight.
            at_default = await p99_of(off, auth, search_s, MAX_IN_FLIGHT, rounds)
            on, on_pid = await stack.enter_async_context(gateway(nats_url, issuer_url, best))
            await wait_ok(on, auth)
            await closed_loop(on, auth, 1, 8)
            at_once = await stack.enter_async_context(
                gateway(nats_url, issuer_url, best, repeat_delay=False)
            )
            await wait_ok(at_once[0], auth)
            urls = {"off": (off, off_pid), "on": (on, on_pid), "on_at_once": at_once}
            at_3x = await compare(urls, clients, 3 * best, load_s, rounds)
            heavy = await compare(urls, clients, HEAVY, load_s, 1 if quick else 2)
    return {
        "load_generator": "bench/_closedloop.py: closed loop, keep-alive, separate process; "
        "refused requests are sent again at once unless the clients honour Retry-After "
        "(then after 1-2 s); one token per connection unless all are one client",
        # Other work on the machine: p99s grow with it (compare cases of the same run).
        "load_average_1m_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        "cpus": os.cpu_count(),
        "rounds": rounds,
        "seconds_per_run": {"search": search_s, "load": load_s},
        "unloaded_p99_ms": unloaded,
        "p99_ms_by_concurrency": tried,
        "sustainable_concurrency": best,
        "max_in_flight_when_on": best,
        f"p99_ms_at_default_bound_{MAX_IN_FLIGHT}_unbounded_gateway": at_default,
        "at_3x_sustainable": at_3x,
        f"at_{HEAVY}_connections": heavy,
        "targets": {
            "admitted_p99_ratio_to_unloaded_max": P99_FACTOR,
            "refused_p99_ms_max": REFUSAL_P99_TARGET_MS,
        },
        "target_met_at_3x": {label: at_3x[label]["target"]["pass"] for label, *_ in CASES},
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(run(quick="--quick" in sys.argv)), indent=2))
