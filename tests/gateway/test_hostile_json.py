"""No input crashes the edge: depth bombs and odd JSON in tokens, proofs and bodies get a
4xx problem document, never a 500."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg

from mesh.runtime import ServiceRuntime
from tests.gateway.conftest import bearer
from tests.support.bombs import BOMBS, ODD_BODIES, compact, object_holding, token_bombs
from tests.support.dpop import DPoPKey
from tests.support.tokens import TokenFactory

ECHO = "/v1/ecosystems/acme/echo"
MASHUP = "/v1/ecosystems/acme/mashup"
PERSON = "/v1/ecosystems/acme/people/dora"
PROBLEM = "application/problem+json"


def assert_problem(resp: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert resp.status_code == status, resp.text[:300]
    assert resp.headers["content-type"] == PROBLEM
    doc: dict[str, Any] = resp.json()
    assert doc["status"] == status and doc["request_id"]
    if code is not None:
        assert doc["code"] == code
    return doc


class TestTokens:
    @pytest.mark.parametrize("token", token_bombs().values(), ids=token_bombs().keys())
    @pytest.mark.parametrize("scheme", ["Bearer", "DPoP"])
    async def test_a_nested_token_is_unauthenticated(
        self, gateway: httpx.AsyncClient, token: str, scheme: str
    ) -> None:
        r = await gateway.get(ECHO, headers={"Authorization": f"{scheme} {token}"})
        doc = assert_problem(r, 401, "unauthenticated")
        assert "malformed" in doc["detail"]

    @pytest.mark.parametrize("token", token_bombs().values(), ids=token_bombs().keys())
    async def test_a_nested_token_in_a_mashup_is_unauthenticated(
        self, gateway: httpx.AsyncClient, token: str
    ) -> None:
        body = {"requests": [{"id": "a", "path": ECHO}]}
        r = await gateway.post(MASHUP, json=body, headers=bearer(token))
        assert_problem(r, 401, "unauthenticated")

    async def test_a_well_formed_token_still_works(
        self, gateway: httpx.AsyncClient, profile: ServiceRuntime, tokens: TokenFactory
    ) -> None:
        r = await gateway.get(ECHO, headers=bearer(tokens.mint(sub="dora")))
        assert r.status_code == 200, r.text


class TestDPoPProofs:
    @pytest.mark.parametrize("part", ["header", "payload"])
    @pytest.mark.parametrize("kind", BOMBS)
    async def test_a_nested_proof_is_an_invalid_dpop_proof(
        self, gateway: httpx.AsyncClient, tokens: TokenFactory, part: str, kind: str
    ) -> None:
        key = DPoPKey()
        token = tokens.mint(sub="dora", cnf={"jkt": key.jkt})
        good = key.proof("GET", f"{gateway.base_url}".rstrip("/") + ECHO, token).split(".")
        bomb = compact(BOMBS[kind], '{"jti": "x"}')
        proof = (
            f"{bomb.split('.')[0]}.{good[1]}.{good[2]}"
            if part == "header"
            else f"{good[0]}.{compact('{}', BOMBS[kind]).split('.')[1]}.{good[2]}"
        )
        r = await gateway.get(ECHO, headers={"Authorization": f"DPoP {token}", "DPoP": proof})
        assert_problem(r, 401, "unauthenticated")
        assert 'error="invalid_dpop_proof"' in r.headers["www-authenticate"]


class TestBodies:
    @pytest.mark.parametrize("bomb", BOMBS.values(), ids=BOMBS.keys())
    async def test_a_nested_body_without_a_token_is_a_bad_request(
        self, gateway: httpx.AsyncClient, bomb: str
    ) -> None:
        r = await gateway.patch(PERSON, content=bomb, headers={"Content-Type": "application/json"})
        doc = assert_problem(r, 400, "bad_request")
        assert "not valid JSON" in doc["detail"]

    @pytest.mark.parametrize("bomb", BOMBS.values(), ids=BOMBS.keys())
    async def test_a_nested_body_with_a_token_is_a_bad_request(
        self, gateway: httpx.AsyncClient, tokens: TokenFactory, bomb: str
    ) -> None:
        headers = {**bearer(tokens.mint(sub="dora")), "Content-Type": "application/json"}
        r = await gateway.patch(PERSON, content=object_holding(bomb), headers=headers)
        assert_problem(r, 400, "bad_request")

    @pytest.mark.parametrize("bomb", BOMBS.values(), ids=BOMBS.keys())
    async def test_a_nested_mashup_is_a_bad_request(
        self, gateway: httpx.AsyncClient, tokens: TokenFactory, bomb: str
    ) -> None:
        sub_request = json.dumps({"id": "a", "method": "PATCH", "path": PERSON})[:-1]
        body = '{"requests": [' + sub_request + ', "body": ' + object_holding(bomb) + "}]}"
        headers = {**bearer(tokens.mint(sub="dora")), "Content-Type": "application/json"}
        r = await gateway.post(MASHUP, content=body, headers=headers)
        assert_problem(r, 400, "bad_request")

    @pytest.mark.parametrize("body", ODD_BODIES.values(), ids=ODD_BODIES.keys())
    async def test_odd_documents_never_fail_the_server(
        self, gateway: httpx.AsyncClient, profile: ServiceRuntime, tokens: TokenFactory, body: bytes
    ) -> None:
        headers = {**bearer(tokens.mint(sub="dora")), "Content-Type": "application/json"}
        r = await gateway.patch(PERSON, content=body, headers=headers)
        assert r.status_code < 500, r.text[:300]
        if r.status_code >= 400:
            assert_problem(r, r.status_code)

    async def test_nesting_within_the_bound_is_accepted(
        self, gateway: httpx.AsyncClient, profile: ServiceRuntime, tokens: TokenFactory
    ) -> None:
        """Depth the parser allows reaches validation (a field error, not a syntax error)."""
        headers = {**bearer(tokens.mint(sub="dora")), "Content-Type": "application/json"}
        r = await gateway.patch(
            PERSON, content=object_holding("[" * 50 + "]" * 50), headers=headers
        )
        assert r.status_code != 400 and r.status_code < 500, r.text[:300]


@pytest.fixture
async def bombing_echo(nc: Client) -> AsyncIterator[None]:
    """A responder on the echo subject (no real service there) that answers a depth bomb."""
    from contracts.v1 import system

    async def reply(msg: Msg) -> None:
        await msg.respond(BOMBS["arrays"].encode())

    sub = await nc.subscribe(system.ECHO.subject, cb=reply)
    await nc.flush()
    yield
    await sub.unsubscribe()


class TestReplies:
    async def test_a_reply_the_edge_cannot_embed_is_a_bad_gateway_item(
        self, gateway: httpx.AsyncClient, tokens: TokenFactory, bombing_echo: None
    ) -> None:
        body = {"requests": [{"id": "a", "path": ECHO}]}
        r = await gateway.post(MASHUP, json=body, headers=bearer(tokens.mint(sub="dora")))
        assert r.status_code == 200, r.text[:300]
        item = r.json()["results"][0]
        assert item["status"] == 502 and item["body"]["code"] == "bad_gateway"


class TestOddProofClaims:
    """Claims a client chose are compared in constant time whatever their characters."""

    @pytest.mark.parametrize("ath", ["é", "\u2603" * 43, 5, None])
    async def test_an_odd_ath_is_an_invalid_dpop_proof(
        self, gateway: httpx.AsyncClient, tokens: TokenFactory, ath: object
    ) -> None:
        key = DPoPKey()
        token = tokens.mint(sub="dora", cnf={"jkt": key.jkt})
        proof = key.proof("GET", f"{gateway.base_url}".rstrip("/") + ECHO, ath=ath)
        r = await gateway.get(ECHO, headers={"Authorization": f"DPoP {token}", "DPoP": proof})
        assert_problem(r, 401, "unauthenticated")
        assert 'error="invalid_dpop_proof"' in r.headers["www-authenticate"]

    @pytest.mark.parametrize("nonce", ["é", "\u2603" * 24, 5, ["x"]])
    async def test_an_odd_nonce_asks_for_the_servers(
        self,
        start_gateway: Callable[..., contextlib.AbstractAsyncContextManager[httpx.AsyncClient]],
        tokens: TokenFactory,
        nonce: object,
    ) -> None:
        key = DPoPKey()
        token = tokens.mint(sub="dora", cnf={"jkt": key.jkt})
        async with start_gateway(dpop_nonce=True) as gateway:
            url = f"{gateway.base_url}".rstrip("/") + ECHO
            proof = key.proof("GET", url, token, nonce=nonce)
            r = await gateway.get(ECHO, headers={"Authorization": f"DPoP {token}", "DPoP": proof})
        assert_problem(r, 401, "unauthenticated")
        assert 'error="use_dpop_nonce"' in r.headers["www-authenticate"]
        assert r.headers["dpop-nonce"]
