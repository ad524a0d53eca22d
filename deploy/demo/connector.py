"""Demo content of the connector: back-ends, operations, grants, webhooks.

The back-ends are the small demo servers of ``deploy/demo/backends.py``, which the
launcher starts on loopback; the operator allow-lists each of their ports, and nothing
else on loopback (not NATS monitoring, not identity's metrics). What is seeded:

- contoso ``erp``: ``contoso.stock-level`` (granted to northwind), ``contoso.reserve``
  and ``contoso.release`` (granted to the ecosystem: steps of the demo flow)
- northwind ``tms``: ``northwind.ship``; its back-end reports ``shipment.delivered``
  events through the inbound webhook ``events`` (granted to the whole ecosystem)
- fabrikam ``analytics``: ``fabrikam.demand-forecast`` and ``fabrikam.mesh-health``
- contoso subscribes to northwind's ``shipment.delivered`` at its own back-end, so a
  flow's shipment shows up in contoso's delivery log

The secrets shown once (inbound endpoint, subscription) go to ``var/demo-backends.json``
(mode 0600), where the demo back-ends read them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx

from deploy.demo.backends import API_KEY, EVENT_TYPE, SECRETS_FILE

STOCK_INPUT = {
    "type": "object",
    "required": ["sku"],
    "properties": {"sku": {"type": "string", "minLength": 1}},
}
STOCK_OUTPUT = {
    "type": "object",
    "properties": {"sku": {"type": "string"}, "available": {"type": "integer"}},
}
RESERVE_INPUT = {
    "type": "object",
    "required": ["sku", "qty"],
    "properties": {"sku": {"type": "string", "minLength": 1}, "qty": {"type": "integer"}},
}
SHIP_INPUT = {
    "type": "object",
    "required": ["reservation"],
    "properties": {"reservation": {"type": "string"}, "destination": {"type": "string"}},
}
SKU_INPUT = STOCK_INPUT
RELEASE_INPUT = {
    "type": "object",
    "required": ["reservation"],
    "properties": {"reservation": {"type": "string"}},
}
# What the operations answer: the portal's flow builder offers these fields to later steps.
FORECAST_OUTPUT = {
    "type": "object",
    "properties": {
        "sku": {"type": "string"},
        "units": {"type": "integer"},
        "horizon_days": {"type": "integer"},
    },
}
RESERVATION_OUTPUT = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "sku": {"type": "string"},
        "qty": {"type": "integer"},
        "status": {"type": "string"},
    },
}
SHIPMENT_OUTPUT = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "reservation": {"type": "string"},
        "destination": {"type": "string"},
        "status": {"type": "string"},
    },
}
# The supply-chain flow of the README and the portal's flow form: three partners' operations.
FLOW_STEPS: list[dict[str, Any]] = [
    {"name": "forecast", "operation": "fabrikam.demand-forecast", "input": {"sku": "$input.sku"}},
    {
        "name": "reserve",
        "operation": "contoso.reserve",
        "input": {"sku": "$input.sku", "qty": "$steps.forecast.output.units"},
        "compensate": {
            "operation": "contoso.release",
            "input": {"reservation": "$steps.reserve.output.id"},
        },
    },
    {
        "name": "ship",
        "operation": "northwind.ship",
        "input": {"reservation": "$steps.reserve.output.id", "destination": "$input.destination"},
    },
]
FLOW_INPUT = {"sku": "A-1", "destination": "Rotterdam DC"}


async def _send(
    api: httpx.AsyncClient, token: str, method: str, path: str, body: dict[str, Any] | None = None
) -> dict[str, Any] | None:
    resp = await api.request(method, path, json=body, headers={"Authorization": f"Bearer {token}"})
    if resp.status_code == 409:
        return None  # already seeded
    resp.raise_for_status()
    return resp.json() if resp.content else None


async def _grant_once(
    api: httpx.AsyncClient, token: str, base: str, operation: str, body: dict[str, Any]
) -> None:
    existing = await _send(api, token, "GET", f"{base}/operations/{operation}/grants")
    if existing and any(
        g["grantee"] == body.get("grantee") and not g["revoked_at"] for g in existing["items"]
    ):
        return
    await _send(api, token, "POST", f"{base}/operations/{operation}/grants", body)


async def _backend(
    api: httpx.AsyncClient,
    token: str,
    base: str,
    partner: str,
    backend: dict[str, Any],
    operations: list[dict[str, Any]],
) -> None:
    made = await _send(api, token, "POST", f"{base}/partners/{partner}/backends", backend)
    if made is None:  # registered by an earlier run, maybe on other ports: move it here
        await _send(
            api,
            token,
            "PATCH",
            f"{base}/partners/{partner}/backends/{backend['name']}",
            {"base_url": backend["base_url"], "description": backend["description"]},
        )
    for op in operations:
        await _send(
            api,
            token,
            "POST",
            f"{base}/partners/{partner}/backends/{backend['name']}/operations",
            op,
        )


def _save_secrets(var: Path, doc: dict[str, Any]) -> None:
    path = var / SECRETS_FILE
    old: dict[str, Any] = {}
    if path.exists():
        old = json.loads(path.read_text())
    for partner, values in doc.items():
        mine = old.setdefault(partner, {})
        for key, value in values.items():
            if isinstance(value, dict):
                mine.setdefault(key, {}).update(value)
            else:
                mine[key] = value
    fd = os.open(path.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(old, f, indent=2)
    os.replace(path.with_suffix(".tmp"), path)


async def seed(
    api: httpx.AsyncClient,
    tokens: dict[str, str],
    eco: str,
    backends: dict[str, str] | None = None,
    var: Path | None = None,
    clients: dict[str, Any] | None = None,
) -> None:
    """``backends``: the demo back-ends' base URLs by partner (skipped without them);
    ``var``: where their secrets go; ``clients``: the partners' back-end client credentials."""
    if not backends:
        return
    base = f"/v1/ecosystems/{eco}"
    entries = [str(httpx.URL(url).netloc.decode()) for url in backends.values()]
    await _send(api, tokens["olivia"], "PUT", f"{base}/egress-allowlist", {"entries": entries})

    carlos, fatima, nadia = tokens["carlos"], tokens["fatima"], tokens["nadia"]
    await _backend(
        api,
        carlos,
        base,
        "contoso",
        {
            "name": "erp",
            "base_url": backends["contoso"],
            "auth": {"kind": "api_key", "header": "X-Api-Key", "api_key": API_KEY},
            "description": "Contoso Manufacturing ERP (demo back-end)",
        },
        [
            {
                "name": "stock-level",
                "method": "GET",
                "path": "/stock/{sku}",
                "input_schema": STOCK_INPUT,
                "output_schema": STOCK_OUTPUT,
                "visibility": "ecosystem",
                "description": "Units of a SKU available to promise",
            },
            {
                "name": "reserve",
                "method": "POST",
                "path": "/reservations",
                "input_schema": RESERVE_INPUT,
                "output_schema": RESERVATION_OUTPUT,
                "visibility": "ecosystem",
                "description": "Reserve units of a SKU for a shipment",
            },
            {
                "name": "release",
                "method": "POST",
                "path": "/reservations/{reservation}/release",
                "input_schema": RELEASE_INPUT,
                "output_schema": RESERVATION_OUTPUT,
                "visibility": "ecosystem",
                "description": "Release a reservation (the compensation of reserve)",
            },
        ],
    )
    await _grant_once(
        api,
        carlos,
        base,
        "contoso.stock-level",
        {"grantee": "northwind", "response_fields": ["sku", "available"]},
    )
    for op in ("contoso.reserve", "contoso.release"):
        await _grant_once(api, carlos, base, op, {"grantee": None, "rate_limit_per_minute": 120})

    await _backend(
        api,
        nadia,
        base,
        "northwind",
        {
            "name": "tms",
            "base_url": backends["northwind"],
            "description": "Northwind Logistics transport management (demo back-end)",
        },
        [
            {
                "name": "ship",
                "method": "POST",
                "path": "/shipments",
                "input_schema": SHIP_INPUT,
                "output_schema": SHIPMENT_OUTPUT,
                "visibility": "ecosystem",
                "description": "Book a shipment for a reservation",
            }
        ],
    )
    await _grant_once(
        api, nadia, base, "northwind.ship", {"grantee": None, "rate_limit_per_minute": 120}
    )

    await _backend(
        api,
        fatima,
        base,
        "fabrikam",
        {
            "name": "analytics",
            "base_url": backends["fabrikam"],
            "description": "Fabrikam Analytics (demo back-end)",
        },
        [
            {
                "name": "mesh-health",
                "method": "GET",
                "path": "/healthz",
                "visibility": "ecosystem",
                "description": "Is the mesh up? (asks the gateway)",
            },
            {
                "name": "demand-forecast",
                "method": "GET",
                "path": "/forecast/{sku}",
                "input_schema": SKU_INPUT,
                "output_schema": FORECAST_OUTPUT,
                "visibility": "ecosystem",
                "description": "Units of a SKU expected to sell in the next two weeks",
            },
        ],
    )
    for op in ("fabrikam.mesh-health", "fabrikam.demand-forecast"):
        await _grant_once(api, fatima, base, op, {"grantee": None, "rate_limit_per_minute": 60})
    await _send(
        api,
        fatima,
        "POST",
        f"{base}/partners/fabrikam/webhooks/event-grants",
        {"event_type": "forecast.updated", "grantee": "contoso"},
    )
    await _webhooks(api, tokens, base, backends, var, clients or {})


async def _webhooks(
    api: httpx.AsyncClient,
    tokens: dict[str, str],
    base: str,
    backends: dict[str, str],
    var: Path | None,
    clients: dict[str, Any],
) -> None:
    """northwind reports deliveries into the mesh; contoso subscribes to them."""
    nadia, carlos = tokens["nadia"], tokens["carlos"]
    northwind, contoso = f"{base}/partners/northwind", f"{base}/partners/contoso"
    saved: dict[str, Any] = {}
    inbound = await _send(api, nadia, "POST", f"{northwind}/webhooks/inbound", {"name": "events"})
    client = clients.get("northwind-backend", {})
    saved["northwind"] = {
        "eco": base.rsplit("/", 1)[1],
        "inbound": "events",
        "client": {
            "client_id": client.get("client_id"),
            "client_secret": client.get("client_secret"),
        },
    }
    if inbound and inbound.get("secret"):
        saved["northwind"]["inbound_secret"] = inbound["secret"]
    existing = await _send(api, nadia, "GET", f"{northwind}/webhooks/event-grants")
    if not any(
        g["event_type"] == EVENT_TYPE and g["grantee"] is None and not g["revoked_at"]
        for g in (existing or {}).get("items", [])
    ):
        await _send(
            api,
            nadia,
            "POST",
            f"{northwind}/webhooks/event-grants",
            {"event_type": EVENT_TYPE, "grantee": None},
        )
    url = backends["contoso"].rstrip("/") + "/webhooks"
    subs = await _send(api, carlos, "GET", f"{contoso}/webhooks/subscriptions")
    if not any(s["url"] == url and s["active"] for s in (subs or {}).get("items", [])):
        made = await _send(
            api,
            carlos,
            "POST",
            f"{contoso}/webhooks/subscriptions",
            {"source_partner": "northwind", "event_types": [EVENT_TYPE], "url": url},
        )
        if made and made.get("secret"):
            saved["contoso"] = {"subscriptions": {made["id"]: made["secret"]}}
    if var is not None:
        _save_secrets(var, saved)
