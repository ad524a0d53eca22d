"""Load shedding under retry storms: a real gateway, real NATS, a real MeshService whose
calls the test holds.

One client holds at most its share of the bound, so its retry storm does not starve
another client; a connection that asks again within its Retry-After waits a moment for
its next refusal, well within 50 ms (at most so many wait at once); refusals carry CORS
headers for allowed origins only, and a preflight is not shed.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from collections.abc import AsyncIterator

import httpx
from nats.aio.client import Client
from prometheus_client import REGISTRY

from tests.gateway.conftest import bearer
from tests.gateway.test_shedding import (
    ECHO,
    Headers,
    StartGateway,
    assert_overloaded,
    auth,
    holding,
    shed_count,
)
from tests.support.held import held_echo
from tests.support.tokens import TestKeys, TokenFactory

__all__ = ["auth"]  # the fixture, shared


def delayed_count() -> float:
    return REGISTRY.get_sample_value("pm_gateway_refusals_delayed_total") or 0.0


@contextlib.asynccontextmanager
async def connections(gw: httpx.AsyncClient, n: int) -> AsyncIterator[list[httpx.AsyncClient]]:
    """``n`` clients of the same gateway, one keep-alive connection each."""
    one = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with contextlib.AsyncExitStack() as stack:
        yield [
            await stack.enter_async_context(
                httpx.AsyncClient(base_url=gw.base_url, timeout=10, limits=one)
            )
            for _ in range(n)
        ]


async def timed(client: httpx.AsyncClient, headers: dict[str, str]) -> tuple[int, float]:
    started = time.perf_counter()
    r = await client.get(ECHO, params={"message": "now"}, headers=headers)
    return r.status_code, time.perf_counter() - started


class TestFairShares:
    async def test_a_retry_storm_from_one_client_does_not_starve_another(
        self, start_gateway: StartGateway, nc: Client, test_keys: TestKeys, tokens: TokenFactory
    ) -> None:
        """A holds its share (half of 4) and hammers for more from four connections that
        retry at once; B's calls are admitted all along, and A's storm never reaches the
        service and costs the gateway at most one refusal per connection per delay."""
        a, b = bearer(tokens.mint(sub="greedy")), bearer(tokens.mint(sub="modest"))
        delay, storm_s = 0.02, 0.6
        async with (
            held_echo(nc, test_keys.verifier()) as held,
            start_gateway(
                max_in_flight=4,
                repeat_refusal_delay_s=delay,
                request_timeout=30,  # the held calls outlast the storm
                rate_limits_enabled=False,
            ) as gw,
            connections(gw, 4) as storm,
        ):
            hogs = [holding(gw, a), holding(gw, a)]
            await held.arrivals(2)
            before = shed_count("client_share")
            stop = time.perf_counter() + storm_s
            storm_statuses: list[list[int]] = [[] for _ in storm]

            async def hammer(client: httpx.AsyncClient, out: list[int]) -> None:
                while time.perf_counter() < stop:
                    out.append((await timed(client, a))[0])

            storming = [asyncio.create_task(hammer(c, o)) for c, o in zip(storm, storm_statuses)]
            served: list[int] = []
            while time.perf_counter() < stop:
                served.append((await timed(gw, b))[0])
            await asyncio.gather(*storming)
            assert served and set(served) == {200}, served
            assert all(set(out) == {503} for out in storm_statuses), "A is at its share"
            assert held.arrived == 2 + len(served), "no refused call reached the service"
            bound = storm_s / delay + 2  # a first refusal at once, then one per delay
            assert all(len(out) <= bound for out in storm_statuses), storm_statuses
            assert shed_count("client_share") == before + sum(map(len, storm_statuses))
            # B may take the rest of the bound, not more than its own share.
            b_held = [holding(gw, b), holding(gw, b)]
            await held.arrivals(4 + len(served))
            refused = await gw.get(ECHO, params={"message": "now"}, headers=b)
            assert_overloaded(refused, "gateway is at capacity")
            held.release.set()
            assert {r.status_code for r in await asyncio.gather(*hogs, *b_held)} == {200}

    async def test_without_a_share_one_client_takes_every_slot(
        self, start_gateway: StartGateway, nc: Client, test_keys: TestKeys, tokens: TokenFactory
    ) -> None:
        """What the share prevents: with all of the bound to one client, another is shut out."""
        a, b = bearer(tokens.mint(sub="greedy")), bearer(tokens.mint(sub="modest"))
        async with (
            held_echo(nc, test_keys.verifier()) as held,
            start_gateway(max_in_flight=4, client_share=1.0, rate_limits_enabled=False) as gw,
        ):
            hogs = [holding(gw, a) for _ in range(4)]
            await held.arrivals(4)
            assert_overloaded(await gw.get(ECHO, headers=b), "gateway is at capacity")
            held.release.set()
            assert {r.status_code for r in await asyncio.gather(*hogs)} == {200}


class TestCheapRefusals:
    async def test_a_repeat_refusal_waits_a_moment_and_stays_within_50_ms(
        self, start_gateway: StartGateway, nc: Client, test_keys: TestKeys, auth: Headers
    ) -> None:
        """A first refusal at once; the same connection asking again within its
        Retry-After gets each next refusal after the delay, well within 50 ms; another
        connection's first refusal is again at once."""
        delay = 0.02
        async with (
            held_echo(nc, test_keys.verifier()) as held,
            start_gateway(
                max_in_flight=1,
                repeat_refusal_delay_s=delay,
                request_timeout=30,  # the held call outlasts the measurement
                rate_limits_enabled=False,
            ) as gw,
            connections(gw, 2) as (storm, other),
        ):
            blocker = holding(gw, auth)
            await held.arrivals(1)
            before = delayed_count()
            assert (await timed(storm, auth))[0] == 503
            assert delayed_count() == before, "a first refusal is not delayed"
            repeats, probes = [], []
            for _ in range(20):  # a probe's round trip beside each: what the machine adds
                started = time.perf_counter()
                assert (await storm.get("/healthz")).status_code == 200
                probes.append(time.perf_counter() - started)
                repeats.append(await timed(storm, auth))
            assert {status for status, _ in repeats} == {503}
            assert delayed_count() == before + 20, "a probe between does not reset it"
            took = [t for _, t in repeats]
            assert min(took) >= delay, "each repeat waited the delay"
            added = statistics.median(took) - statistics.median(probes)
            assert delay / 2 <= added <= 0.05, (took, probes)
            assert (await timed(other, auth))[0] == 503
            assert delayed_count() == before + 20, "another connection: at once again"
            held.release.set()
            assert (await blocker).status_code == 200
            assert (await timed(storm, auth))[0] == 200, "admitted once there is room"

    async def test_at_most_so_many_refusals_wait_at_once(
        self, start_gateway: StartGateway, nc: Client, test_keys: TestKeys, auth: Headers
    ) -> None:
        """Six connections refused once ask again together: two wait (the cap), the
        other four are answered at once (not delayed), and nothing waits afterwards."""
        async with (
            held_echo(nc, test_keys.verifier()) as held,
            start_gateway(
                max_in_flight=1,
                repeat_refusal_delay_s=0.04,
                max_delayed_refusals=2,
                rate_limits_enabled=False,
            ) as gw,
            connections(gw, 6) as clients,
        ):
            blocker = holding(gw, auth)
            await held.arrivals(1)
            # Both rounds at once, each: the second comes well within the first's
            # Retry-After however slow the machine (a sequential first round was not).
            first = await asyncio.gather(*(timed(c, auth) for c in clients))
            assert {status for status, _ in first} == {503}
            before = delayed_count()
            peak = 0

            async def watch() -> None:
                nonlocal peak
                while True:
                    now = REGISTRY.get_sample_value("pm_gateway_refusals_waiting") or 0.0
                    peak = max(peak, int(now))
                    await asyncio.sleep(0.001)

            watcher = asyncio.create_task(watch())
            again = await asyncio.gather(*(timed(c, auth) for c in clients))
            watcher.cancel()
            assert {status for status, _ in again} == {503}
            assert delayed_count() == before + 2
            assert peak == 2, "the cap was reached and held"
            assert REGISTRY.get_sample_value("pm_gateway_refusals_waiting") == 0
            held.release.set()
            assert (await blocker).status_code == 200


PORTAL = "https://portal.acme.example"


class TestRefusalCors:
    async def test_a_refusal_carries_cors_headers_for_allowed_origins_only(
        self, start_gateway: StartGateway, nc: Client, test_keys: TestKeys, auth: Headers
    ) -> None:
        async with (
            held_echo(nc, test_keys.verifier()) as held,
            start_gateway(
                max_in_flight=1, cors_origins={"acme": [PORTAL]}, rate_limits_enabled=False
            ) as gw,
        ):
            blocker = holding(gw, auth)
            await held.arrivals(1)
            allowed = await gw.get(ECHO, headers={**auth, "Origin": PORTAL})
            assert_overloaded(allowed, "gateway is at capacity")
            assert allowed.headers["access-control-allow-origin"] == PORTAL
            assert "Retry-After" in allowed.headers["access-control-expose-headers"]
            assert allowed.headers["vary"] == "Origin"
            other = await gw.get(ECHO, headers={**auth, "Origin": "https://evil.example"})
            assert_overloaded(other, "gateway is at capacity")
            assert "access-control-allow-origin" not in other.headers
            # The preflight of a browser's call is answered, not shed: else the browser
            # never sends the call and cannot read its refusal.
            preflight = await gw.options(
                ECHO,
                headers={
                    "Origin": PORTAL,
                    "Access-Control-Request-Method": "GET",
                    "Access-Control-Request-Headers": "authorization",
                },
            )
            assert preflight.status_code == 204
            assert preflight.headers["access-control-allow-origin"] == PORTAL
            held.release.set()
            assert (await blocker).status_code == 200

    async def test_a_deadline_504_carries_cors_headers_too(
        self, start_gateway: StartGateway, nc: Client, test_keys: TestKeys, auth: Headers
    ) -> None:
        async with (
            held_echo(nc, test_keys.verifier()),
            start_gateway(
                request_deadline_s=0.3, cors_origins={"acme": [PORTAL]}, rate_limits_enabled=False
            ) as gw,
        ):
            late = await gw.get(
                ECHO, params={"message": "hold"}, headers={**auth, "Origin": PORTAL}
            )
            assert late.status_code == 504
            assert late.headers["access-control-allow-origin"] == PORTAL
