"""Load shedding: a real gateway, real NATS, a real MeshService whose calls the test holds.

Requests beyond the gateway's bound are refused 503 ``overloaded`` with Retry-After,
before the service sees them, while the admitted ones succeed; streams and probes are not
counted; the whole-request deadline answers 504; a service at its own bound answers
``overloaded``, which the gateway turns into 503 with Retry-After. (Client shares,
repeat refusals and CORS on refusals: ``test_shedding_storms.py``.)
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from nats.aio.client import Client
from prometheus_client import REGISTRY

from contracts.errors import PROBLEM_TYPE_BASE
from tests.gateway.conftest import bearer
from tests.support.held import held_echo
from tests.support.tokens import TestKeys, TokenFactory

ECHO = "/v1/ecosystems/acme/echo"
EVENTS = {"Accept": "text/event-stream"}

Headers = dict[str, str]
StartGateway = Callable[..., contextlib.AbstractAsyncContextManager[httpx.AsyncClient]]


def shed_count(reason: str) -> float:
    return REGISTRY.get_sample_value("pm_gateway_shed_total", {"reason": reason}) or 0.0


def service_count(code: str) -> float:
    labels = {"service": "profile", "operation": "system.echo", "code": code}
    return REGISTRY.get_sample_value("pm_service_requests_total", labels) or 0.0


@pytest.fixture
def auth(tokens: TokenFactory) -> Headers:
    """A member of acme, whose token allows the echo."""
    return bearer(tokens.mint(eco="acme"))


def holding(
    client: httpx.AsyncClient, auth: Headers, extra: Headers | None = None
) -> asyncio.Task[httpx.Response]:
    """A call the service holds until released, in flight meanwhile."""
    headers = {**auth, **(extra or {})}
    return asyncio.create_task(client.get(ECHO, params={"message": "hold"}, headers=headers))


def assert_overloaded(r: httpx.Response, detail_names: str) -> None:
    assert r.status_code == 503, r.text
    assert r.headers["retry-after"] == "1"
    assert r.headers["content-type"] == "application/problem+json"
    doc = r.json()
    assert doc["type"] == PROBLEM_TYPE_BASE + "overloaded"
    assert doc["code"] == "overloaded" and doc["status"] == 503
    assert detail_names in doc["detail"]
    assert doc["instance"] == ECHO and doc["request_id"] == r.headers["x-request-id"]


class TestInFlightBound:
    async def test_beyond_the_bound_is_refused_at_once_and_the_admitted_succeed(
        self, start_gateway: StartGateway, nc: Client, test_keys: TestKeys, auth: Headers
    ) -> None:
        async with (
            held_echo(nc, test_keys.verifier()) as held,
            # One client may take all of the bound here (its share is another test's).
            start_gateway(max_in_flight=2, client_share=1.0, rate_limits_enabled=False) as gw,
        ):
            first, second = holding(gw, auth), holding(gw, auth)
            await held.arrivals(2)
            before = shed_count("in_flight")
            refused = await gw.get(ECHO, params={"message": "now"}, headers=auth)
            assert_overloaded(refused, "gateway is at capacity")
            assert refused.headers["x-content-type-options"] == "nosniff"
            assert shed_count("in_flight") == before + 1
            assert held.arrived == 2, "a refused request never reaches the service"
            held.release.set()
            for admitted in await asyncio.gather(first, second):
                assert admitted.status_code == 200, admitted.text
                assert admitted.json()["message"] == "hold"
            after = await gw.get(ECHO, params={"message": "now"}, headers=auth)
            assert after.status_code == 200, "the slots are free again once answered"
            assert shed_count("in_flight") == before + 1

    async def test_a_refusal_is_the_same_for_anyone_and_keeps_a_sane_request_id(
        self, start_gateway: StartGateway, nc: Client, test_keys: TestKeys, auth: Headers
    ) -> None:
        """Shed before authentication: no token, a bad token or a POST with a body all
        get the same 503, without a word about who may call."""
        async with (
            held_echo(nc, test_keys.verifier()) as held,
            start_gateway(max_in_flight=1, rate_limits_enabled=False) as gw,
        ):
            blocker = holding(gw, auth)
            await held.arrivals(1)
            anonymous = await gw.get(ECHO, headers={"X-Request-Id": "shed-me"})
            assert_overloaded(anonymous, "gateway is at capacity")
            assert anonymous.headers["x-request-id"] == "shed-me"
            forged = await gw.get(
                ECHO, headers={"Authorization": "Bearer x", "X-Request-Id": "a b"}
            )
            assert_overloaded(forged, "gateway is at capacity")
            assert forged.headers["x-request-id"] != "a b"
            mashup = await gw.post("/v1/ecosystems/acme/mashup", json={"calls": []}, headers=auth)
            assert mashup.status_code == 503 and mashup.headers["retry-after"] == "1"
            held.release.set()
            assert (await blocker).status_code == 200

    async def test_probes_are_never_shed(
        self, start_gateway: StartGateway, nc: Client, test_keys: TestKeys, auth: Headers
    ) -> None:
        async with (
            held_echo(nc, test_keys.verifier()) as held,
            start_gateway(max_in_flight=1, rate_limits_enabled=False) as gw,
        ):
            blocker = holding(gw, auth)
            await held.arrivals(1)
            assert (await gw.get(ECHO, headers=auth)).status_code == 503, "the bound is full"
            assert (await gw.get("/healthz")).status_code == 200
            assert (await gw.get("/readyz")).status_code == 200
            held.release.set()
            assert (await blocker).status_code == 200

    async def test_event_streams_are_not_counted(
        self, start_gateway: StartGateway, nc: Client, test_keys: TestKeys, auth: Headers
    ) -> None:
        async with (
            held_echo(nc, test_keys.verifier()) as held,
            start_gateway(max_in_flight=1, rate_limits_enabled=False) as gw,
        ):
            stream = holding(gw, auth, EVENTS)
            await held.arrivals(1)
            blocker = holding(gw, auth)  # the stream took no slot: this one is admitted
            await held.arrivals(2)
            assert (await gw.get(ECHO, headers=auth)).status_code == 503, "now the bound is full"
            beside = await gw.get(ECHO, params={"message": "now"}, headers={**auth, **EVENTS})
            assert beside.status_code == 200, "a stream is admitted beyond the bound"
            held.release.set()
            assert (await stream).status_code == 200 and (await blocker).status_code == 200

    async def test_declared_stream_paths_are_not_counted(
        self, start_gateway: StartGateway, nc: Client, test_keys: TestKeys, auth: Headers
    ) -> None:
        async with (
            held_echo(nc, test_keys.verifier()) as held,
            start_gateway(max_in_flight=1, stream_paths=[ECHO], rate_limits_enabled=False) as gw,
        ):
            calls = [holding(gw, auth) for _ in range(3)]
            await held.arrivals(3)
            held.release.set()
            assert [r.status_code for r in await asyncio.gather(*calls)] == [200, 200, 200]

    async def test_a_bound_of_zero_sheds_nothing(
        self, start_gateway: StartGateway, nc: Client, test_keys: TestKeys, auth: Headers
    ) -> None:
        async with (
            held_echo(nc, test_keys.verifier()) as held,
            start_gateway(max_in_flight=0, rate_limits_enabled=False) as gw,
        ):
            before = shed_count("in_flight")
            calls = [holding(gw, auth) for _ in range(5)]
            await held.arrivals(5)
            held.release.set()
            assert [r.status_code for r in await asyncio.gather(*calls)] == [200] * 5
            assert shed_count("in_flight") == before


class TestDeadline:
    async def test_a_slow_service_is_cut_at_the_deadline_which_travels_with_the_call(
        self, start_gateway: StartGateway, nc: Client, test_keys: TestKeys, auth: Headers
    ) -> None:
        """The NATS hop waits no longer than what is left of the request's deadline (not
        the 2 s request_timeout of these tests), and the service is told when that is."""
        async with (
            held_echo(nc, test_keys.verifier()) as held,
            start_gateway(max_in_flight=1, request_deadline_s=0.3, rate_limits_enabled=False) as gw,
        ):
            sent = time.time()
            late = await gw.get(ECHO, params={"message": "hold"}, headers=auth)
            assert late.status_code == 504, late.text
            assert late.headers["content-type"] == "application/problem+json"
            doc = late.json()
            assert doc["code"] == "timeout" and doc["type"] == PROBLEM_TYPE_BASE + "timeout"
            assert doc["instance"] == ECHO and "retry-after" not in late.headers
            deadline = held.deadlines[0]
            assert deadline is not None and sent < deadline <= sent + 0.3 + 0.05
            quick = await gw.get(ECHO, params={"message": "now"}, headers=auth)
            assert quick.status_code == 200, "the cut request no longer counts in flight"

    async def test_the_deadline_covers_the_whole_request_not_only_the_nats_hop(
        self, start_gateway: StartGateway, nc: Client, test_keys: TestKeys, auth: Headers
    ) -> None:
        """A body that trickles in slower than the deadline: cut while the gateway still
        reads it, before any NATS call, answered 504, and its slot freed."""

        async def trickle() -> AsyncIterator[bytes]:
            yield b'{"calls": '
            await asyncio.sleep(1)  # httpx reads the reply once the whole body is sent
            yield b"[]}"

        async with (
            held_echo(nc, test_keys.verifier()) as held,
            start_gateway(max_in_flight=1, request_deadline_s=0.3, rate_limits_enabled=False) as gw,
        ):
            before = shed_count("deadline")
            headers = {**auth, "Content-Type": "application/json", "X-Request-Id": "slow-1"}
            late = await gw.post("/v1/ecosystems/acme/mashup", content=trickle(), headers=headers)
            assert late.status_code == 504, late.text
            doc = late.json()
            assert doc["code"] == "timeout" and doc["status"] == 504
            assert doc["detail"] == "the request took longer than 0.3 s"
            assert doc["instance"] == "/v1/ecosystems/acme/mashup"
            assert doc["request_id"] == "slow-1" == late.headers["x-request-id"]
            assert late.headers["x-content-type-options"] == "nosniff"
            assert shed_count("deadline") == before + 1
            assert held.arrived == 0
            quick = await gw.get(ECHO, params={"message": "now"}, headers=auth)
            assert quick.status_code == 200, "the cut request no longer counts in flight"

    async def test_streams_are_not_cut(
        self, start_gateway: StartGateway, nc: Client, test_keys: TestKeys, auth: Headers
    ) -> None:
        async with (
            held_echo(nc, test_keys.verifier()) as held,
            start_gateway(request_deadline_s=0.2, rate_limits_enabled=False) as gw,
        ):
            sent = time.time()
            stream = holding(gw, auth, EVENTS)
            await held.arrivals(1)
            await asyncio.sleep(0.5)  # well past the deadline
            assert not stream.done()
            held.release.set()
            assert (await stream).status_code == 200
            # Only the NATS hop's own timeout (2 s in these tests) went with it.
            deadline = held.deadlines[0]
            assert deadline is not None and deadline > sent + 1.5


class TestServiceBound:
    async def test_a_service_at_capacity_is_a_503_with_retry_after(
        self, start_gateway: StartGateway, nc: Client, test_keys: TestKeys, auth: Headers
    ) -> None:
        async with (
            held_echo(nc, test_keys.verifier(), max_concurrency=1) as held,
            start_gateway(rate_limits_enabled=False) as gw,
        ):
            blocker = holding(gw, auth)
            await held.arrivals(1)
            before = service_count("overloaded")
            refused = await gw.get(ECHO, params={"message": "now"}, headers=auth)
            assert_overloaded(refused, "profile is at capacity")
            assert held.arrived == 1, "refused before the handler"
            assert service_count("overloaded") == before + 1
            held.release.set()
            assert (await blocker).status_code == 200
            again = await gw.get(ECHO, params={"message": "now"}, headers=auth)
            assert again.status_code == 200, "capacity is back once the held call is answered"
