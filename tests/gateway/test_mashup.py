"""Mashups: concurrent sub-requests, each authorised on its own, with partial results."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from pydantic import BaseModel

from contracts.claims import Scope
from contracts.policy import Operation, Policy
from contracts.registry import OPERATIONS
from contracts.v1 import system
from mesh.runtime import ServiceRuntime
from tests.gateway.conftest import bearer
from tests.support.tokens import TokenFactory

MASHUP = "/v1/ecosystems/acme/mashup"
ECHO = "/v1/ecosystems/acme/echo"


class SlowRequest(BaseModel):
    eco: str
    delay: float = 0.0


SLOW = Operation(
    name="testing.slow",
    subject="pm.v1.testing.slow",
    method="GET",
    path="/v1/ecosystems/{eco}/slow",
    request=SlowRequest,
    reply=SlowRequest,
    policy=Policy(scope=Scope.MESH_PING),
    summary="Answers after the delay it is asked for",
)


@pytest.fixture
async def slow_service(nc: Client) -> AsyncIterator[dict[str, int]]:
    """A real NATS responder for SLOW that records how many calls it held at once."""
    state = {"in_flight": 0, "peak": 0}

    async def answer(msg: Msg) -> None:
        state["in_flight"] += 1
        state["peak"] = max(state["peak"], state["in_flight"])
        try:
            await asyncio.sleep(json.loads(msg.data)["delay"])
            await msg.respond(msg.data)
        finally:
            state["in_flight"] -= 1

    async def handle(msg: Msg) -> None:
        asyncio.get_running_loop().create_task(answer(msg))

    sub = await nc.subscribe(SLOW.subject, cb=handle)
    await nc.flush()
    yield state
    await sub.unsubscribe()


@pytest.fixture
async def mesh_gateway(
    start_gateway: Callable[..., contextlib.AbstractAsyncContextManager[httpx.AsyncClient]],
) -> AsyncIterator[httpx.AsyncClient]:
    """A gateway serving the registry plus the slow test operation."""
    async with start_gateway(operations=(*OPERATIONS, SLOW), mashup_max_items=8) as client:
        yield client


class TestPartialResults:
    async def test_each_item_gets_its_own_status(
        self,
        mesh_gateway: httpx.AsyncClient,
        profile: ServiceRuntime,
        slow_service: dict[str, int],
        tokens: TokenFactory,
    ) -> None:
        batch: dict[str, Any] = {
            "timeout": 0.5,
            "requests": [
                {"id": "ok", "path": ECHO, "query": {"message": "hi"}},
                {"id": "other-eco", "path": "/v1/ecosystems/globex/echo"},
                {"id": "missing", "path": "/v1/ecosystems/acme/nothing"},
                {"id": "method", "method": "DELETE", "path": ECHO},
                {"id": "invalid", "path": ECHO, "query": {"message": "x" * 1001}},
                {"id": "late", "path": "/v1/ecosystems/acme/slow", "query": {"delay": 3}},
            ],
        }
        r = await mesh_gateway.post(MASHUP, json=batch, headers=bearer(tokens.mint()))
        assert r.status_code == 200
        reply = r.json()
        got = {item["id"]: item["status"] for item in reply["results"]}
        assert got == {
            "ok": 200,
            "other-eco": 403,
            "missing": 404,
            "method": 405,
            "invalid": 422,
            "late": 504,
        }
        assert [i["id"] for i in reply["results"]] == [i["id"] for i in batch["requests"]]
        assert reply["results"][0]["body"]["message"] == "hi"
        assert reply["results"][1]["body"]["code"] == "forbidden"
        assert reply["complete"] is False

    async def test_items_run_concurrently(
        self, mesh_gateway: httpx.AsyncClient, slow_service: dict[str, int], tokens: TokenFactory
    ) -> None:
        items = [
            {"id": str(i), "path": "/v1/ecosystems/acme/slow", "query": {"delay": 0.3}}
            for i in range(4)
        ]
        r = await mesh_gateway.post(MASHUP, json={"requests": items}, headers=bearer(tokens.mint()))
        assert [i["status"] for i in r.json()["results"]] == [200] * 4
        assert r.json()["complete"] is True
        assert slow_service["peak"] == 4

    async def test_each_item_is_authorised_with_its_own_policy(
        self, mesh_gateway: httpx.AsyncClient, profile: ServiceRuntime, tokens: TokenFactory
    ) -> None:
        token = tokens.mint(scope=Scope.PROFILE_READ.value)
        batch = {"requests": [{"id": "a", "path": ECHO}, {"id": "b", "path": ECHO}]}
        r = await mesh_gateway.post(MASHUP, json=batch, headers=bearer(token))
        assert r.status_code == 200
        assert [i["status"] for i in r.json()["results"]] == [403, 403]
        assert "mesh:ping" in r.json()["results"][0]["body"]["detail"]

    async def test_item_body_and_query_are_merged_like_a_direct_call(
        self, mesh_gateway: httpx.AsyncClient, profile: ServiceRuntime, tokens: TokenFactory
    ) -> None:
        batch = {"requests": [{"id": "a", "path": ECHO, "query": {"message": "q", "eco": "zz"}}]}
        r = await mesh_gateway.post(MASHUP, json=batch, headers=bearer(tokens.mint()))
        body = r.json()["results"][0]["body"]
        assert (body["message"], body["eco"]) == ("q", "acme")


class TestTheBatchItself:
    async def test_anonymous_is_401(self, mesh_gateway: httpx.AsyncClient) -> None:
        r = await mesh_gateway.post(MASHUP, json={"requests": [{"id": "a", "path": ECHO}]})
        assert r.status_code == 401

    async def test_token_of_another_ecosystem_is_403(
        self, mesh_gateway: httpx.AsyncClient, tokens: TokenFactory
    ) -> None:
        batch = {"requests": [{"id": "a", "path": ECHO}]}
        r = await mesh_gateway.post(MASHUP, json=batch, headers=bearer(tokens.mint(eco="globex")))
        assert r.status_code == 403

    @pytest.mark.parametrize(
        "batch",
        [
            {"requests": []},
            {"requests": [{"id": str(i), "path": ECHO} for i in range(9)]},
            {"requests": [{"id": "a", "path": ECHO}, {"id": "a", "path": ECHO}]},
            {"requests": [{"id": "a", "path": f"{ECHO}?message=x"}]},
            {"requests": [{"id": "a", "path": "https://elsewhere.example/v1/x"}]},
            {"requests": [{"id": "a", "method": "TRACE", "path": ECHO}]},
            {"nothing": True},
        ],
        ids=[
            "empty",
            "too-many",
            "duplicate-ids",
            "query-in-path",
            "absolute-url",
            "method",
            "shape",
        ],
    )
    async def test_malformed_batches_are_422(
        self,
        mesh_gateway: httpx.AsyncClient,
        tokens: TokenFactory,
        batch: dict[str, Any] | dict[str, list[dict[str, str]]] | dict[str, bool],
    ) -> None:
        r = await mesh_gateway.post(MASHUP, json=batch, headers=bearer(tokens.mint()))
        assert r.status_code == 422
        assert r.headers["content-type"] == "application/problem+json"

    async def test_body_that_is_not_json_is_400(
        self, mesh_gateway: httpx.AsyncClient, tokens: TokenFactory
    ) -> None:
        r = await mesh_gateway.post(
            MASHUP,
            content=b"{nope",
            headers={**bearer(tokens.mint()), "Content-Type": "application/json"},
        )
        assert r.status_code == 400

    async def test_body_of_another_media_type_is_415(
        self, mesh_gateway: httpx.AsyncClient, tokens: TokenFactory
    ) -> None:
        r = await mesh_gateway.post(
            MASHUP, content=b"a=b", headers={**bearer(tokens.mint()), "Content-Type": "text/plain"}
        )
        assert r.status_code == 415


def test_echo_is_in_the_registry() -> None:
    assert system.ECHO in OPERATIONS
