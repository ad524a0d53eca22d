"""HTTP → NATS routing through a running gateway: replies, coded errors, headers carried."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from pydantic import BaseModel, model_validator

from contracts import headers as h
from contracts.claims import Scope
from contracts.errors import ErrorCode
from contracts.policy import Operation, Policy
from contracts.registry import OPERATIONS
from contracts.v1 import system
from mesh.runtime import ServiceRuntime
from tests.gateway.conftest import bearer
from tests.support.tokens import TokenFactory

ECHO = "/v1/ecosystems/acme/echo"
PROBLEM = "application/problem+json"


@pytest.fixture
async def fake_echo(
    nc: Client,
) -> AsyncIterator[tuple[dict[str, object], list[tuple[dict[str, str], bytes]]]]:
    """A real NATS responder on the echo subject whose behaviour a test chooses.

    It stands in for a service that answers with an error, answers too late or
    reports what it received; it records the headers and payload of each request.
    """
    seen: list[tuple[dict[str, str], bytes]] = []
    behaviour: dict[str, object] = {"mode": "reply"}

    async def handle(msg: Msg) -> None:
        seen.append((dict(msg.headers or {}), msg.data))
        mode = behaviour["mode"]
        if mode == "silent":
            return
        if mode == "error":
            status, body = behaviour["status"], behaviour["body"]
            await nc.publish(
                msg.reply,
                json.dumps(body).encode(),
                headers={h.SERVICE_ERROR_CODE: str(status), h.SERVICE_ERROR: "error"},
            )
            return
        req = json.loads(msg.data)
        reply = system.EchoReply(
            message=req["message"],
            eco=req["eco"],
            sub="s",
            partner=None,
            client_id="c",
            service="fake",
            instance="0",
        )
        await msg.respond(reply.model_dump_json().encode())

    sub = await nc.subscribe(system.ECHO.subject, cb=handle)
    await nc.flush()
    yield behaviour, seen
    await sub.unsubscribe()


class TestForwarding:
    async def test_echo_through_the_real_service(
        self, gateway: httpx.AsyncClient, profile: ServiceRuntime, tokens: TokenFactory
    ) -> None:
        token = tokens.mint(eco="acme", partner="northwind", sub="noah")
        r = await gateway.get(ECHO, params={"message": "hi"}, headers=bearer(token))
        assert r.status_code == 200
        assert r.headers["content-type"] == "application/json"
        body = r.json()
        assert (body["message"], body["sub"], body["partner"]) == ("hi", "noah", "northwind")
        assert body["service"] == "profile"

    async def test_token_trace_and_request_id_travel_in_nats_headers(
        self,
        gateway: httpx.AsyncClient,
        fake_echo: tuple[dict[str, object], list[tuple[dict[str, str], bytes]]],
        tokens: TokenFactory,
    ) -> None:
        _, seen = fake_echo
        token = tokens.mint()
        trace = "0af7651916cd43dd8448eb211c80319c"
        r = await gateway.get(
            ECHO,
            params={"message": "x"},
            headers={
                **bearer(token),
                "traceparent": f"00-{trace}-b7ad6b7169203331-01",
                "X-Request-Id": "req-123",
            },
        )
        assert r.status_code == 200
        hdrs, payload = seen[-1]
        assert hdrs[h.AUTHORIZATION] == f"Bearer {token}"
        assert hdrs[h.REQUEST_ID] == "req-123"
        assert r.headers["x-request-id"] == "req-123"
        _, trace_id, span, _ = hdrs[h.TRACEPARENT].split("-")
        assert trace_id == trace and span != "b7ad6b7169203331"
        assert json.loads(payload) == {"eco": "acme", "message": "x"}

    async def test_a_fresh_trace_starts_without_traceparent(
        self,
        gateway: httpx.AsyncClient,
        fake_echo: tuple[dict[str, object], list[tuple[dict[str, str], bytes]]],
        tokens: TokenFactory,
    ) -> None:
        _, seen = fake_echo
        await gateway.get(ECHO, headers=bearer(tokens.mint()))
        assert len(seen[-1][0][h.TRACEPARENT].split("-")[1]) == 32

    async def test_path_wins_over_query_for_bound_params(
        self,
        gateway: httpx.AsyncClient,
        fake_echo: tuple[dict[str, object], list[tuple[dict[str, str], bytes]]],
        tokens: TokenFactory,
    ) -> None:
        _, seen = fake_echo
        r = await gateway.get(f"{ECHO}?eco=globex", headers=bearer(tokens.mint(eco="acme")))
        assert r.status_code == 200
        assert json.loads(seen[-1][1])["eco"] == "acme"


class TestErrors:
    @pytest.mark.parametrize(
        "code", [ErrorCode.NOT_FOUND, ErrorCode.CONFLICT, ErrorCode.FORBIDDEN, ErrorCode.GONE]
    )
    async def test_service_error_codes_become_problems(
        self,
        gateway: httpx.AsyncClient,
        fake_echo: tuple[dict[str, object], list[tuple[dict[str, str], bytes]]],
        tokens: TokenFactory,
        code: ErrorCode,
    ) -> None:
        behaviour, _ = fake_echo
        status = {"not_found": 404, "conflict": 409, "forbidden": 403, "gone": 410}[code.value]
        behaviour.update(mode="error", status=status, body={"code": code.value, "detail": "why"})
        r = await gateway.get(ECHO, headers=bearer(tokens.mint()))
        assert r.status_code == status
        assert r.headers["content-type"] == PROBLEM
        doc = r.json()
        assert doc["code"] == code.value and doc["status"] == status and doc["detail"] == "why"
        assert doc["type"].endswith(code.value) and doc["instance"] == ECHO

    async def test_service_internal_error_shows_no_internals(
        self,
        gateway: httpx.AsyncClient,
        fake_echo: tuple[dict[str, object], list[tuple[dict[str, str], bytes]]],
        tokens: TokenFactory,
    ) -> None:
        behaviour, _ = fake_echo
        behaviour.update(mode="error", status=500, body={"unexpected": "Traceback (most recent"})
        r = await gateway.get(ECHO, headers=bearer(tokens.mint()))
        assert r.status_code == 500
        assert "Traceback" not in r.text
        assert r.json()["code"] == "internal"

    async def test_timeout_is_504(
        self,
        start_gateway: Callable[..., contextlib.AbstractAsyncContextManager[httpx.AsyncClient]],
        fake_echo: tuple[dict[str, object], list[tuple[dict[str, str], bytes]]],
        tokens: TokenFactory,
    ) -> None:
        behaviour, _ = fake_echo
        behaviour["mode"] = "silent"
        async with start_gateway(request_timeout=0.3) as gw:
            r = await gw.get(ECHO, headers=bearer(tokens.mint()))
        assert r.status_code == 504
        assert r.json()["code"] == "timeout"

    async def test_no_responders_is_503(
        self, gateway: httpx.AsyncClient, tokens: TokenFactory
    ) -> None:
        r = await gateway.get(ECHO, headers=bearer(tokens.mint()))
        assert r.status_code == 503
        assert r.json()["code"] == "unavailable"

    async def test_validation_fails_at_the_edge_without_a_nats_hop(
        self,
        gateway: httpx.AsyncClient,
        fake_echo: tuple[dict[str, object], list[tuple[dict[str, str], bytes]]],
        tokens: TokenFactory,
    ) -> None:
        _, seen = fake_echo
        r = await gateway.get(ECHO, params={"message": "x" * 1001}, headers=bearer(tokens.mint()))
        assert r.status_code == 422
        doc = r.json()
        assert doc["code"] == "validation_failed" and doc["errors"][0]["loc"] == ["message"]
        assert seen == []

    async def test_denied_callers_learn_nothing_of_the_schema(
        self,
        gateway: httpx.AsyncClient,
        fake_echo: tuple[dict[str, object], list[tuple[dict[str, str], bytes]]],
        tokens: TokenFactory,
    ) -> None:
        _, seen = fake_echo
        r = await gateway.get(
            "/v1/ecosystems/acme/echo",
            params={"message": "x" * 1001},
            headers=bearer(tokens.mint(eco="globex")),
        )
        assert r.status_code == 403
        assert seen == []

    async def test_unknown_route_is_a_404_problem(self, gateway: httpx.AsyncClient) -> None:
        r = await gateway.get("/v1/nothing/here")
        assert r.status_code == 404
        assert r.headers["content-type"] == PROBLEM

    async def test_wrong_method_is_a_405_problem(
        self, gateway: httpx.AsyncClient, tokens: TokenFactory
    ) -> None:
        r = await gateway.delete(ECHO, headers=bearer(tokens.mint()))
        assert r.status_code == 405
        assert r.json()["code"] == "method_not_allowed"
        assert r.headers["allow"] == "GET, HEAD"  # RFC 9110 15.5.6

    async def test_a_405_allows_every_method_the_path_is_routed_for(
        self, gateway: httpx.AsyncClient, tokens: TokenFactory
    ) -> None:
        r = await gateway.put("/v1/ecosystems/acme/workspaces", headers=bearer(tokens.mint()))
        assert r.status_code == 405
        assert r.headers["allow"] == "GET, HEAD, POST"
        assert r.headers["content-type"] == PROBLEM

    async def test_a_routed_method_has_no_allow_header(self, gateway: httpx.AsyncClient) -> None:
        r = await gateway.get(ECHO)
        assert r.status_code == 401 and "allow" not in r.headers


class TestConcurrency:
    async def test_many_calls_in_flight_each_get_their_own_reply(
        self, gateway: httpx.AsyncClient, profile: ServiceRuntime, tokens: TokenFactory
    ) -> None:
        # One token per call: one client may hold only its share of the in-flight bound
        # (gateway.shedding), and what is checked here is that 40 replies in flight at
        # once each reach their own caller.
        replies = await asyncio.gather(
            *(
                gateway.get(ECHO, params={"message": f"m{i}"}, headers=bearer(tokens.mint()))
                for i in range(40)
            )
        )
        assert [r.json()["message"] for r in replies] == [f"m{i}" for i in range(40)]


class Exploding(BaseModel):
    eco: str

    @model_validator(mode="after")
    def _explode(self) -> Exploding:
        raise RuntimeError("secret internals: db password is hunter2")


EXPLODE = Operation(
    name="testing.explode",
    subject="pm.v1.testing.explode",
    method="GET",
    path="/v1/ecosystems/{eco}/explode",
    request=Exploding,
    reply=Exploding,
    policy=Policy(scope=Scope.MESH_PING),
    summary="Fails inside the gateway with an unexpected exception",
)


class TestUnexpectedFailures:
    async def test_a_gateway_bug_is_a_500_problem_without_internals(
        self,
        start_gateway: Callable[..., contextlib.AbstractAsyncContextManager[httpx.AsyncClient]],
        tokens: TokenFactory,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        async with start_gateway(operations=(*OPERATIONS, EXPLODE)) as gw:
            r = await gw.get("/v1/ecosystems/acme/explode", headers=bearer(tokens.mint()))
        assert r.status_code == 500
        assert r.headers["content-type"] == PROBLEM
        doc = r.json()
        assert doc["code"] == "internal" and doc["request_id"] in doc["detail"]
        assert "hunter2" not in r.text and "Traceback" not in r.text
        assert any("hunter2" in (rec.exc_text or "") or rec.exc_info for rec in caplog.records)
