"""The service base under load: a bound on requests handled at once (beyond it, the coded
error ``overloaded`` at once), and requests whose caller's deadline has passed dropped."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from nats.aio.client import Client
from nats.errors import TimeoutError as NatsTimeoutError
from prometheus_client import REGISTRY

from contracts import headers as h
from contracts.errors import ErrorCode
from contracts.v1 import system
from mesh import context
from mesh.client import call, request_raw
from mesh.errors import MeshError
from tests.support.held import held_echo
from tests.support.tokens import TestKeys, TokenFactory


def handled(code: str) -> float:
    labels = {"service": "profile", "operation": "system.echo", "code": code}
    return REGISTRY.get_sample_value("pm_service_requests_total", labels) or 0.0


def echo_payload(message: str) -> bytes:
    return json.dumps({"eco": "acme", "message": message}).encode()


class TestBound:
    async def test_beyond_max_concurrency_is_overloaded_at_once(
        self, nc: Client, test_keys: TestKeys, tokens: TokenFactory
    ) -> None:
        token = tokens.mint(eco="acme")
        async with held_echo(nc, test_keys.verifier(), max_concurrency=2) as held:
            holds = [
                asyncio.create_task(
                    call(nc, system.ECHO, {"eco": "acme", "message": "hold"}, token)
                )
                for _ in range(2)
            ]
            await held.arrivals(2)
            before = handled("overloaded")
            with pytest.raises(MeshError) as err:
                await call(nc, system.ECHO, {"eco": "acme", "message": "now"}, token)
            assert err.value.code is ErrorCode.OVERLOADED and err.value.status == 503
            assert "profile is at capacity" in err.value.detail
            assert held.arrived == 2 and handled("overloaded") == before + 1
            held.release.set()
            assert [r.message for r in await asyncio.gather(*holds)] == ["hold", "hold"]
            reply = await call(nc, system.ECHO, {"eco": "acme", "message": "now"}, token)
            assert reply.message == "now", "capacity is back once the held calls are answered"

    async def test_the_refusal_is_a_coded_micro_error_naming_the_request(
        self, nc: Client, test_keys: TestKeys, tokens: TokenFactory
    ) -> None:
        token = tokens.mint(eco="acme")
        async with held_echo(nc, test_keys.verifier(), max_concurrency=1) as held:
            blocker = asyncio.create_task(
                call(nc, system.ECHO, {"eco": "acme", "message": "hold"}, token)
            )
            await held.arrivals(1)
            headers = {h.AUTHORIZATION: f"Bearer {token}", h.REQUEST_ID: "busy-1"}
            msg = await nc.request(system.ECHO.subject, echo_payload("now"), 5, headers=headers)
            assert msg.headers is not None
            assert msg.headers[h.SERVICE_ERROR_CODE] == "503"
            assert msg.headers[h.SERVICE_ERROR] == "Overloaded"
            assert msg.headers[h.REQUEST_ID] == "busy-1"
            assert json.loads(msg.data)["code"] == "overloaded"
            held.release.set()
            await blocker


class TestDeadlines:
    async def test_a_request_past_its_deadline_is_dropped_unanswered(
        self, nc: Client, test_keys: TestKeys, tokens: TokenFactory
    ) -> None:
        token = tokens.mint(eco="acme")
        async with held_echo(nc, test_keys.verifier()) as held:
            before = handled("expired")
            stale = {h.AUTHORIZATION: f"Bearer {token}", h.DEADLINE: f"{time.time() - 1:.3f}"}
            with pytest.raises(NatsTimeoutError):
                await nc.request(system.ECHO.subject, echo_payload("late"), 0.3, headers=stale)
            assert held.arrived == 0 and handled("expired") == before + 1
            fresh = {**stale, h.DEADLINE: f"{time.time() + 5:.3f}"}
            msg = await nc.request(system.ECHO.subject, echo_payload("fresh"), 5, headers=fresh)
            assert json.loads(msg.data)["message"] == "fresh"
            assert held.deadlines == [pytest.approx(float(fresh[h.DEADLINE]))]

    async def test_an_unreadable_deadline_is_ignored(
        self, nc: Client, test_keys: TestKeys, tokens: TokenFactory
    ) -> None:
        token = tokens.mint(eco="acme")
        async with held_echo(nc, test_keys.verifier()) as held:
            odd = {h.AUTHORIZATION: f"Bearer {token}", h.DEADLINE: "soon"}
            msg = await nc.request(system.ECHO.subject, echo_payload("odd"), 5, headers=odd)
            assert json.loads(msg.data)["message"] == "odd"
            assert held.deadlines == [None]

    async def test_calls_carry_the_deadline_and_wait_no_longer(
        self, nc: Client, test_keys: TestKeys, tokens: TokenFactory
    ) -> None:
        """A caller with a deadline (``context.deadline``) sends it on and gives up at it,
        whatever longer timeout it passed; one whose deadline has passed sends nothing."""
        token = tokens.mint(eco="acme")
        async with held_echo(nc, test_keys.verifier()) as held:
            limit = time.time() + 0.3
            reset = context.deadline.set(limit)
            try:
                with pytest.raises(MeshError) as err:
                    await request_raw(nc, system.ECHO.subject, echo_payload("hold"), token, 30)
                assert err.value.code is ErrorCode.TIMEOUT
                assert held.deadlines == [pytest.approx(limit, abs=0.01)]
                context.deadline.set(time.time() - 0.1)
                with pytest.raises(MeshError) as err:
                    await request_raw(nc, system.ECHO.subject, echo_payload("now"), token, 30)
                assert err.value.code is ErrorCode.TIMEOUT and "deadline" in err.value.detail
                assert held.arrived == 1, "nothing was sent past the deadline"
            finally:
                context.deadline.reset(reset)

    async def test_without_a_deadline_the_timeout_is_sent_on(
        self, nc: Client, test_keys: TestKeys, tokens: TokenFactory
    ) -> None:
        token = tokens.mint(eco="acme")
        async with held_echo(nc, test_keys.verifier()) as held:
            sent = time.time()
            await request_raw(nc, system.ECHO.subject, echo_payload("now"), token, 7)
            deadline = held.deadlines[0]
            assert deadline is not None and sent + 6.9 < deadline < time.time() + 7.01
