"""Small demo back-ends of the seeded partners, on loopback: what the connector's demo
operations call, and where the demo webhook subscriptions deliver.

``python -m deploy.demo.backends --port contoso=9201 --port northwind=9202 ...`` serves
one back-end per partner, each on its own port (the operator allow-lists exactly these
ports, nothing else on loopback):

- contoso ``erp`` (API key): ``GET /stock/{sku}``, ``POST /reservations``,
  ``POST /reservations/{reservation}/release``
- northwind ``tms``: ``POST /shipments``; once booked, the back-end reports the delivery
  back into the mesh as a signed ``shipment.delivered`` event (its inbound webhook)
- fabrikam ``analytics``: ``GET /forecast/{sku}``, ``GET /healthz`` (asks the gateway)

Every one of them receives webhook deliveries at ``POST /webhooks`` (checking the
Standard Webhooks signature when it knows the subscription's secret) and lists what it
received at ``GET /webhooks``. State lives in memory: a restart starts from full stock.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import time
import uuid
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

log = logging.getLogger("demo-backends")
API_KEY = "demo-not-a-real-key"
EVENT_TYPE = "shipment.delivered"
SECRETS_FILE = "demo-backends.json"  # written by deploy/demo/connector.py under var/

Handler = Callable[[Request], Awaitable[Response]]


def problem(status: int, detail: str) -> JSONResponse:
    return JSONResponse(
        {"title": detail, "status": status, "detail": detail},
        status,
        media_type="application/problem+json",
    )


@dataclass
class Backend:
    """One partner's back-end: its webhook inbox and what its routes keep in memory."""

    partner: str
    var: Path
    gateway_url: str
    issuer: str
    received: list[dict[str, Any]] = field(default_factory=list)
    stock: dict[str, int] = field(default_factory=dict)
    reservations: dict[str, dict[str, Any]] = field(default_factory=dict)
    by_key: dict[str, dict[str, Any]] = field(default_factory=dict)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def secrets(self) -> dict[str, Any]:
        path = self.var / SECRETS_FILE
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError):
            return {}
        return dict(doc.get(self.partner, {}))

    # -- every back-end: a webhook inbox ---------------------------------------------------

    async def receive(self, request: Request) -> Response:
        body = (await request.body()).decode(errors="replace")
        verified = self._verify(request, body)
        if verified is False:
            return problem(401, "the webhook signature does not match")
        try:
            payload = json.loads(body)
        except ValueError:
            payload = body
        self.received.append(
            {
                "webhook_id": request.headers.get("webhook-id"),
                "received_at": time.time(),
                "signature_checked": verified is True,
                "payload": payload,
            }
        )
        del self.received[:-100]
        return Response(status_code=204)

    def _verify(self, request: Request, body: str) -> bool | None:
        """True when signed by a known subscription secret, False when not, None if unknown."""
        from services.connector.signing import SignatureError, verify

        secrets = list(self.secrets().get("subscriptions", {}).values())
        if not secrets:
            return None
        for secret in secrets:
            with contextlib.suppress(SignatureError, ValueError):
                verify(
                    secret,
                    request.headers.get("webhook-id", ""),
                    request.headers.get("webhook-timestamp", ""),
                    request.headers.get("webhook-signature", ""),
                    body,
                )
                return True
        return False

    async def inbox(self, request: Request) -> Response:
        return JSONResponse({"items": self.received[-50:]})

    # -- contoso: the ERP --------------------------------------------------------------------

    def available(self, sku: str) -> int:
        return self.stock.setdefault(sku, 40 + zlib.crc32(sku.encode()) % 60)

    async def stock_level(self, request: Request) -> Response:
        if request.headers.get("x-api-key") != API_KEY:
            return problem(401, "a valid X-Api-Key is needed")
        sku = request.path_params["sku"]
        return JSONResponse({"sku": sku, "available": self.available(sku), "unit": "pcs"})

    async def reserve(self, request: Request) -> Response:
        if request.headers.get("x-api-key") != API_KEY:
            return problem(401, "a valid X-Api-Key is needed")
        key = request.headers.get("idempotency-key")
        if key and key in self.by_key:
            return JSONResponse(self.by_key[key], 201)
        body = await _json_body(request)
        sku, qty = str(body.get("sku", "")), body.get("qty")
        if not sku or not isinstance(qty, int) or qty < 1:
            return problem(422, "a reservation needs a sku and a positive qty")
        if qty > self.available(sku):
            return problem(409, f"only {self.available(sku)} of {sku} available")
        self.stock[sku] -= qty
        rid = f"r-{uuid.uuid4().hex[:8]}"
        made: dict[str, Any] = {"id": rid, "sku": sku, "qty": qty, "status": "reserved"}
        self.reservations[rid] = made
        if key:
            self.by_key[key] = made
        return JSONResponse(made, 201)

    async def release(self, request: Request) -> Response:
        if request.headers.get("x-api-key") != API_KEY:
            return problem(401, "a valid X-Api-Key is needed")
        found = self.reservations.get(request.path_params["reservation"])
        if found is None:
            return problem(404, "no such reservation")
        if found["status"] == "reserved":
            found["status"] = "released"
            self.stock[found["sku"]] += found["qty"]
        return JSONResponse(found)

    # -- northwind: transport management ----------------------------------------------------

    async def ship(self, request: Request) -> Response:
        key = request.headers.get("idempotency-key")
        if key and key in self.by_key:
            return JSONResponse(self.by_key[key], 201)
        body = await _json_body(request)
        reservation = str(body.get("reservation", ""))
        if not reservation:
            return problem(422, "a shipment needs the reservation it carries")
        made = {
            "id": f"s-{uuid.uuid4().hex[:8]}",
            "reservation": reservation,
            "destination": str(body.get("destination") or "Rotterdam DC"),
            "status": "booked",
        }
        if key:
            self.by_key[key] = made
        task = asyncio.create_task(self._report_delivery(made))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return JSONResponse(made, 201)

    async def _report_delivery(self, shipment: dict[str, Any]) -> None:
        """Tell the mesh the shipment arrived: a signed message to our inbound webhook."""
        await asyncio.sleep(1.0)
        try:
            await push_event(self, EVENT_TYPE, {**shipment, "status": "delivered"})
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            log.warning("could not report %s: %s", shipment["id"], exc)

    # -- fabrikam: analytics ----------------------------------------------------------------

    async def forecast(self, request: Request) -> Response:
        sku = request.path_params["sku"]
        units = 2 + zlib.crc32(sku.encode()) % 9
        return JSONResponse({"sku": sku, "units": units, "horizon_days": 14})

    async def health(self, request: Request) -> Response:
        async with httpx.AsyncClient(timeout=3) as http:
            try:
                resp = await http.get(f"{self.gateway_url}/healthz")
            except httpx.HTTPError:
                return JSONResponse({"mesh": "unreachable"}, 503)
        return JSONResponse({"mesh": "up" if resp.status_code == 200 else "degraded"})


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


async def push_event(backend: Backend, event_type: str, data: dict[str, Any]) -> None:
    """Sign ``data`` as ``event_type`` and post it to the partner's inbound webhook."""
    from services.connector.signing import headers

    mine = backend.secrets()
    secret, client = mine["inbound_secret"], mine["client"]
    async with httpx.AsyncClient(timeout=10) as http:
        token = await http.post(
            f"{backend.issuer}/token",
            data={"grant_type": "client_credentials", "scope": "connector:invoke"},
            auth=(client["client_id"], client["client_secret"]),
        )
        token.raise_for_status()
        body = json.dumps({"type": event_type, "data": data}, separators=(",", ":"))
        signed = headers(secret, f"msg_{uuid.uuid4().hex}", body)
        resp = await http.post(
            f"{backend.gateway_url}/v1/ecosystems/{mine['eco']}/partners/{backend.partner}"
            f"/webhooks/inbound/{mine['inbound']}/messages",
            json={
                "webhook_id": signed["webhook-id"],
                "webhook_timestamp": signed["webhook-timestamp"],
                "webhook_signature": signed["webhook-signature"],
                "body": body,
            },
            headers={"Authorization": f"Bearer {token.json()['access_token']}"},
        )
        resp.raise_for_status()


ROUTES: dict[str, list[tuple[str, str, str]]] = {
    "contoso": [
        ("GET", "/stock/{sku}", "stock_level"),
        ("POST", "/reservations", "reserve"),
        ("POST", "/reservations/{reservation}/release", "release"),
    ],
    "northwind": [("POST", "/shipments", "ship")],
    "fabrikam": [("GET", "/forecast/{sku}", "forecast"), ("GET", "/healthz", "health")],
}


def app_for(backend: Backend) -> Starlette:
    routes = [
        Route("/webhooks", backend.receive, methods=["POST"]),
        Route("/webhooks", backend.inbox, methods=["GET"]),
    ]
    for method, path, name in ROUTES.get(backend.partner, []):
        routes.append(Route(path, getattr(backend, name), methods=[method]))
    return Starlette(routes=routes)


async def serve(ports: dict[str, int], var: Path, gateway_url: str, issuer: str) -> None:
    servers = []
    for partner, port in ports.items():
        backend = Backend(partner, var, gateway_url.rstrip("/"), issuer.rstrip("/"))
        config = uvicorn.Config(
            app_for(backend), host="127.0.0.1", port=port, log_level="warning", lifespan="off"
        )
        servers.append(uvicorn.Server(config))
    await asyncio.gather(*(s.serve() for s in servers))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m deploy.demo.backends")
    parser.add_argument("--port", action="append", default=[], help="PARTNER=PORT, repeated")
    parser.add_argument("--var", type=Path, default=Path("var"))
    parser.add_argument("--gateway", default="http://127.0.0.1:8080")
    parser.add_argument("--issuer", default="http://127.0.0.1:8081/eco/acme")
    args = parser.parse_args(argv)
    ports = {p: int(n) for p, _, n in (item.partition("=") for item in args.port)}
    logging.basicConfig(level=logging.INFO)
    asyncio.run(serve(ports, args.var, args.gateway, args.issuer))


if __name__ == "__main__":
    main()
