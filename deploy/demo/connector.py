"""Demo content of the connector: back-ends, operations, grants and a webhook endpoint.

Nothing here calls a back-end. fabrikam's ``analytics`` back-end points at the mesh's
own gateway on loopback (``GET /healthz``) so that invoking ``fabrikam.mesh-health``
works on a laptop; the operator allow-lists loopback for that. contoso's ``erp`` is
an example address (invoking it reports the back-end as unreachable).
"""

from __future__ import annotations

from typing import Any

import httpx

STOCK_INPUT = {
    "type": "object",
    "required": ["sku"],
    "properties": {"sku": {"type": "string", "minLength": 1}},
}
STOCK_OUTPUT = {
    "type": "object",
    "properties": {"sku": {"type": "string"}, "available": {"type": "integer"}},
}


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


async def seed(api: httpx.AsyncClient, tokens: dict[str, str], eco: str) -> None:
    base = f"/v1/ecosystems/{eco}"
    gateway = str(api.base_url).rstrip("/")
    await _send(
        api, tokens["olivia"], "PUT", f"{base}/egress-allowlist", {"entries": ["127.0.0.1/32"]}
    )

    fatima, fabrikam = tokens["fatima"], f"{base}/partners/fabrikam"
    await _send(
        api,
        fatima,
        "POST",
        f"{fabrikam}/backends",
        {
            "name": "analytics",
            "base_url": gateway,
            "description": "Fabrikam Analytics demo back-end (the mesh's own health endpoint)",
        },
    )
    await _send(
        api,
        fatima,
        "POST",
        f"{fabrikam}/backends/analytics/operations",
        {
            "name": "mesh-health",
            "method": "GET",
            "path": "/healthz",
            "visibility": "ecosystem",
            "description": "Is the mesh up? (demo operation)",
        },
    )
    await _grant_once(
        api, fatima, base, "fabrikam.mesh-health", {"grantee": None, "rate_limit_per_minute": 60}
    )
    await _send(api, fatima, "POST", f"{fabrikam}/webhooks/inbound", {"name": "events"})
    await _send(
        api,
        fatima,
        "POST",
        f"{fabrikam}/webhooks/event-grants",
        {"event_type": "forecast.updated", "grantee": "contoso"},
    )

    carlos, contoso = tokens["carlos"], f"{base}/partners/contoso"
    await _send(
        api,
        carlos,
        "POST",
        f"{contoso}/backends",
        {
            "name": "erp",
            "base_url": "https://erp.contoso.example",
            "auth": {"kind": "api_key", "header": "X-Api-Key", "api_key": "demo-not-a-real-key"},
            "description": "Contoso Manufacturing ERP",
        },
    )
    await _send(
        api,
        carlos,
        "POST",
        f"{contoso}/backends/erp/operations",
        {
            "name": "stock-level",
            "method": "GET",
            "path": "/stock/{sku}",
            "input_schema": STOCK_INPUT,
            "output_schema": STOCK_OUTPUT,
            "description": "Units of a SKU available to promise",
        },
    )
    await _grant_once(
        api,
        carlos,
        base,
        "contoso.stock-level",
        {"grantee": "northwind", "response_fields": ["sku", "available"]},
    )
