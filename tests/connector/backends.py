"""Real partner back-ends for the connector tests, served by uvicorn on loopback.

One FastAPI app plays every behaviour the tests need: healthy, slow, failing, flapping,
wrong output, redirects, API key, OAuth2 client credentials, and order / reservation /
shipment endpoints that honour ``Idempotency-Key`` the way payment APIs do.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Header, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from tests.support.bombs import nested_arrays


@dataclass
class BackendState:
    hits: Counter[str] = field(default_factory=Counter)
    effects: Counter[str] = field(default_factory=Counter)  # applied side effects per kind
    by_key: dict[str, Any] = field(default_factory=dict)  # Idempotency-Key → stored reply
    seen_headers: list[dict[str, str]] = field(default_factory=list)
    slow_s: float = 1.0
    flap_failures: int = 2
    api_key: str = "k-" + secrets.token_hex(8)
    client_id: str = "mesh-client"
    client_secret: str = "s-" + secrets.token_hex(8)
    tokens: set[str] = field(default_factory=set)
    token_requests: int = 0
    gate: asyncio.Event = field(default_factory=asyncio.Event)  # holds /reserve when set up
    gated: bool = False
    reached_gate: asyncio.Event = field(default_factory=asyncio.Event)
    fail_kinds: set[str] = field(default_factory=set)  # refused for good (409)
    fail_first: Counter[str] = field(default_factory=Counter)  # this many 503s first


def backend_app(state: BackendState) -> FastAPI:
    app = FastAPI()

    @app.middleware("http")
    async def count(request: Request, call_next: Any) -> Any:
        state.hits[request.url.path] += 1
        state.seen_headers.append({k.lower(): v for k, v in request.headers.items()})
        return await call_next(request)

    @app.get("/items/{item_id}")
    async def item(item_id: str, detail: str = "") -> dict[str, Any]:
        return {
            "id": item_id,
            "name": f"item {item_id}",
            "price": 10,
            "margin": 3,
            "supplier": {"name": "acme", "contact": "ops@example.com"},
            "detail": detail,
        }

    @app.get("/slow")
    async def slow() -> dict[str, Any]:
        await asyncio.sleep(state.slow_s)
        return {"ok": True}

    @app.api_route("/fail", methods=["GET", "POST"])
    async def fail() -> JSONResponse:
        return JSONResponse({"error": "boom"}, status_code=500)

    @app.get("/flap")
    async def flap() -> JSONResponse:
        if state.hits["/flap"] <= state.flap_failures:
            return JSONResponse({"error": "busy"}, status_code=503)
        return JSONResponse({"ok": True, "hit": state.hits["/flap"]})

    @app.get("/bomb")
    async def bomb() -> Response:
        """A reply nested past any sane depth (a hostile or broken back-end)."""
        return Response(nested_arrays(), media_type="application/json")

    @app.get("/deep/{levels}")
    async def deep(levels: int) -> Response:
        """A reply nested ``levels`` deep (within the parser's bound, maybe not the relay's)."""
        return Response(nested_arrays(levels), media_type="application/json")

    @app.get("/bad-output")
    async def bad_output() -> dict[str, Any]:
        return {"unexpected": True}

    @app.get("/redirect/same")
    async def redirect_same() -> RedirectResponse:
        return RedirectResponse("/items/r1", status_code=302)

    @app.get("/redirect/other")
    async def redirect_other(request: Request) -> RedirectResponse:
        port = request.url.port
        return RedirectResponse(f"http://localhost:{port}/items/r1", status_code=302)

    @app.get("/redirect/metadata")
    async def redirect_metadata() -> RedirectResponse:
        return RedirectResponse("http://169.254.169.254/latest/meta-data/", status_code=302)

    @app.get("/keyed")
    async def keyed(x_api_key: str = Header(default="")) -> dict[str, Any]:
        if not secrets.compare_digest(x_api_key, state.api_key):
            raise HTTPException(401, "bad key")
        return {"ok": True, "auth": "api_key"}

    @app.post("/oauth/token")
    async def token(request: Request) -> dict[str, Any]:
        state.token_requests += 1
        expected = base64.b64encode(f"{state.client_id}:{state.client_secret}".encode()).decode()
        form = await request.form()
        if request.headers.get("authorization") != f"Basic {expected}" or (
            form.get("grant_type") != "client_credentials"
        ):
            raise HTTPException(401, "invalid_client")
        tok = secrets.token_hex(16)
        state.tokens.add(tok)
        return {"access_token": tok, "token_type": "Bearer", "expires_in": 3600}

    @app.get("/oauth/data")
    async def oauth_data(authorization: str = Header(default="")) -> dict[str, Any]:
        if authorization.removeprefix("Bearer ") not in state.tokens:
            raise HTTPException(401, "bad token")
        return {"ok": True, "auth": "oauth2"}

    async def effect(kind: str, key: str | None, body: dict[str, Any]) -> JSONResponse:
        """Apply a side effect once per Idempotency-Key; a repeat gets the stored reply."""
        if key and key in state.by_key:
            return JSONResponse(state.by_key[key])
        if state.fail_first[kind] > 0:
            state.fail_first[kind] -= 1
            return JSONResponse({"error": f"{kind} busy"}, status_code=503)
        if kind in state.fail_kinds:
            return JSONResponse({"error": f"{kind} refused"}, status_code=409)
        state.effects[kind] += 1
        reply = {"ref": f"{kind}-{state.effects[kind]}", **body}
        if key:
            state.by_key[key] = reply
        return JSONResponse(reply, status_code=201)

    @app.post("/orders")
    async def orders(
        request: Request, idempotency_key: str | None = Header(default=None)
    ) -> JSONResponse:
        return await effect("order", idempotency_key, await request.json())

    @app.post("/reserve")
    async def reserve(
        request: Request, idempotency_key: str | None = Header(default=None)
    ) -> JSONResponse:
        body = await request.json()
        if state.gated:
            state.reached_gate.set()
            await state.gate.wait()
        return await effect("reservation", idempotency_key, body)

    @app.post("/ship")
    async def ship(
        request: Request, idempotency_key: str | None = Header(default=None)
    ) -> JSONResponse:
        return await effect("shipment", idempotency_key, await request.json())

    @app.post("/cancel")
    async def cancel(
        request: Request, idempotency_key: str | None = Header(default=None)
    ) -> JSONResponse:
        return await effect("cancellation", idempotency_key, await request.json())

    return app


@dataclass
class Receiver:
    """A webhook receiver that de-duplicates on webhook-id, as Standard Webhooks asks."""

    secret: str = ""
    received: list[dict[str, Any]] = field(default_factory=list)
    processed: dict[str, Any] = field(default_factory=dict)
    bad_signatures: int = 0
    fail_all: bool = False
    lose_first_ack: bool = False  # process, then answer 500 once per id (a lost ack)


def standard_signature(secret: str, msg_id: str, timestamp: str, body: str) -> str:
    """The Standard Webhooks v1 signature, computed independently of the connector's code."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def receiver_app(rx: Receiver) -> FastAPI:
    app = FastAPI()

    @app.post("/hook")
    async def hook(request: Request) -> JSONResponse:
        body = (await request.body()).decode()
        h = request.headers
        rx.received.append({"id": h.get("webhook-id"), "body": body})
        expected = standard_signature(
            rx.secret, h.get("webhook-id", ""), h.get("webhook-timestamp", ""), body
        )
        if expected not in h.get("webhook-signature", "").split():
            rx.bad_signatures += 1
            return JSONResponse({"error": "bad signature"}, status_code=401)
        if rx.fail_all:
            return JSONResponse({"error": "down"}, status_code=503)
        first = h["webhook-id"] not in rx.processed
        rx.processed.setdefault(h["webhook-id"], body)
        if first and rx.lose_first_ack:
            return JSONResponse({"error": "ack lost"}, status_code=500)
        return JSONResponse({"ok": True})

    return app
