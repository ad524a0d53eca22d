"""The portal's costs, each against a baseline measured in the same run on the same mesh.

- ``dashboard``: the data of a six-source dashboard fetched the way the portal does it
  (``/dashboards/{id}/data``: one gateway mashup, rendered to HTML) against the same six
  calls made one after another straight to the gateway API (what a page without
  mashups would wait for). Ratio < 1 means the dashboard is faster than the baseline.
- ``thread_page``: a forum thread rendered by the portal (session lookup, a gateway call,
  Jinja rendering) against the bare gateway API call for the same thread: the
  backend-for-frontend's overhead.

The mesh: nats-server (wheel), the profile and collaboration services, the gateway and
the portal in this process, on loopback; tokens signed by a key generated for the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import jwt
import uvicorn
from cryptography.hazmat.primitives.asymmetric import rsa

from contracts.claims import ALL_SCOPES, DEFAULT_AUDIENCE
from gateway.app import create_app as create_gateway
from gateway.settings import GatewaySettings
from mesh.localnats import free_port, local_nats
from mesh.runtime import service_runtime
from mesh.tokens import StaticKeys, TokenVerifier, issuer_for
from portal import repository
from portal.app import create_app as create_portal
from portal.oidc import TokenSet
from portal.sessions import cookie_name
from portal.settings import PortalSettings
from services.collaboration import handlers as collab_handlers
from services.collaboration import models as collab_models
from services.collaboration.settings import CollaborationSettings
from services.profile import handlers as profile_handlers
from services.profile import models as profile_models
from services.profile.settings import ProfileSettings

IDENTITY = "http://bench-identity.invalid"
ECO = "acme"
SOURCES = ["people", "companies", "categories", "workspaces", "mentions", "my_cloud"]


class Keys:
    def __init__(self) -> None:
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = jwt.algorithms.RSAAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        jwk.update(kid="bench", use="sig", alg="RS256")
        self.verifier = TokenVerifier(
            StaticKeys({issuer_for(IDENTITY, ECO): [jwk]}), IDENTITY, DEFAULT_AUDIENCE
        )

    def token(self, sub: str, partner: str, roles: list[str]) -> str:
        now = int(time.time())
        claims = {
            "iss": issuer_for(IDENTITY, ECO), "sub": sub, "aud": DEFAULT_AUDIENCE, "iat": now,
            "exp": now + 3600, "jti": uuid.uuid4().hex, "client_id": "portal", "eco": ECO,
            "partner": partner, "roles": roles, "scope": " ".join(sorted(ALL_SCOPES)),
        }  # fmt: skip
        return jwt.encode(claims, self.private, "RS256", headers={"typ": "at+jwt", "kid": "bench"})


@contextlib.asynccontextmanager
async def serve(app: Any) -> AsyncIterator[str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="error", lifespan="on"))
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110  (uvicorn exposes a flag, not an event)
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@contextlib.asynccontextmanager
async def mesh(workdir: Path, keys: Keys) -> AsyncIterator[tuple[str, str, Any]]:
    """(gateway URL, portal URL, portal app) of a mesh on loopback."""
    specs = [
        ("profile", ProfileSettings, profile_models.metadata, profile_handlers.register),
        ("collaboration", CollaborationSettings, collab_models.metadata, collab_handlers.register),
    ]
    with local_nats() as nats_url:
        async with contextlib.AsyncExitStack() as stack:
            for name, settings_cls, metadata, register in specs:
                cfg = settings_cls(
                    nats_url=nats_url, environment="test", identity_url=IDENTITY,
                    database_url=f"sqlite+aiosqlite:///{workdir / name}.db",
                )  # fmt: skip
                rt = await stack.enter_async_context(
                    service_runtime(
                        name, cfg, metadata, verifier=keys.verifier, setup_logging=False
                    )
                )
                register(rt)
                await rt.start()
            gw = GatewaySettings(
                nats_url=nats_url, identity_url=IDENTITY, environment="test",
                rate_limits_enabled=False, access_log=False,
            )  # fmt: skip
            gateway_url = await stack.enter_async_context(
                serve(create_gateway(gw, verifier=keys.verifier))
            )
            settings = PortalSettings(
                gateway_url=gateway_url, identity_url=IDENTITY, environment="test",
                database_url=f"sqlite+aiosqlite:///{workdir / 'portal.db'}", client_secret="x",
            )  # fmt: skip
            app = create_portal(settings)
            portal_url = await stack.enter_async_context(serve(app))
            yield gateway_url, portal_url, app


async def seed(api: httpx.AsyncClient, operator: str, member: str) -> str:
    """A forum category and a thread with a few replies; returns the thread id."""
    ops, me = {"Authorization": f"Bearer {operator}"}, {"Authorization": f"Bearer {member}"}
    category = {"slug": "bench", "name": "Bench"}
    (await api.post("/forums/categories", json=category, headers=ops)).raise_for_status()
    body = {"title": "Capacity planning", "body": "Who has **spare capacity** next quarter?"}
    thread = (await api.post("/forums/categories/bench/threads", json=body, headers=me)).json()
    for i in range(10):
        reply = {"body": f"Reply {i}: we can offer *cold chain* slots in week {i}."}
        await api.post(f"/forums/threads/{thread['id']}/posts", json=reply, headers=me)
    return str(thread["id"])


async def signed_in(app: Any, token: str, sub: str) -> str:
    """A portal session for ``token`` (as the sign-in callback would create); its cookie."""
    tokens = TokenSet(token, None, None, time.time() + 3600)
    cookie, _ = await app.state.portal.store.create(
        ECO, sub, "Bench", "northwind", ["member"], tokens
    )
    return str(cookie)


async def timed(n: int, fn: Callable[[], Awaitable[Any]]) -> list[float]:
    for _ in range(max(3, n // 10)):  # warm-up
        await fn()
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        await fn()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def figures(samples: list[float], baseline: list[float], label: str, base: str) -> dict[str, Any]:
    def pct(xs: list[float], q: float) -> float:
        return round(sorted(xs)[min(len(xs) - 1, int(q * len(xs)))], 2)

    p50, b50 = statistics.median(samples), statistics.median(baseline)
    return {
        "ratio_p50": round(p50 / b50, 3),
        f"{label}_ms": {"p50": round(p50, 2), "p99": pct(samples, 0.99)},
        f"{base}_ms": {"p50": round(b50, 2), "p99": pct(baseline, 0.99)},
        "samples": len(samples),
    }


async def run(quick: bool) -> dict[str, Any]:
    n = 30 if quick else 300
    keys = Keys()
    sub, op_sub = "bench-member", "bench-operator"
    member = keys.token(sub, "northwind", ["member", "partner_admin"])
    operator = keys.token(op_sub, "acme-hq", ["operator", "member"])
    with tempfile.TemporaryDirectory() as tmp:
        async with mesh(Path(tmp), keys) as (gateway_url, portal_url, app):
            base = f"{gateway_url}/v1/ecosystems/{ECO}"
            async with httpx.AsyncClient(base_url=base, timeout=30) as api:
                thread = await seed(api, operator, member)
                cookie = await signed_in(app, member, sub)
                dashboard = await _dashboard(app, sub)
                jar = {cookie_name(False): cookie}
                async with httpx.AsyncClient(base_url=portal_url, cookies=jar, timeout=30) as web:
                    result = await _measure(n, api, web, member, sub, thread, dashboard)
    result["note"] = "ratios < 1: the portal path is faster than its baseline"
    return result


async def _dashboard(app: Any, sub: str) -> str:
    widgets = [{"id": s, "kind": "list", "title": s, "sources": [s]} for s in SOURCES]
    async with app.state.portal.db.transaction() as s:
        await repository.add_dashboard(s, {
            "id": "bench", "eco": ECO, "owner": sub, "owner_name": "Bench",
            "partner": "northwind", "title": "Bench", "shared": False, "widgets": widgets,
        })  # fmt: skip
    return "bench"


async def _measure(n: int, api: httpx.AsyncClient, web: httpx.AsyncClient, token: str, sub: str,
                   thread: str, dashboard: str) -> dict[str, Any]:  # fmt: skip
    auth = {"Authorization": f"Bearer {token}"}
    calls: list[tuple[str, dict[str, str | int]]] = [
        ("/directory", {"kind": "person", "page_size": 100}),
        ("/directory", {"kind": "company", "page_size": 100}),
        ("/forums/categories", {}), ("/workspaces", {}), ("/notifications", {}),
        (f"/people/{sub}/card", {"limit": 30}),
    ]  # fmt: skip

    async def sequential() -> None:
        for path, params in calls:
            await api.get(path, params=params, headers=auth)

    async def portal_dashboard() -> None:
        (await web.get(f"/dashboards/{dashboard}/data")).raise_for_status()

    async def api_thread() -> None:
        (await api.get(f"/forums/threads/{thread}", headers=auth)).raise_for_status()

    async def portal_thread() -> None:
        (await web.get(f"/threads/{thread}")).raise_for_status()

    seq = await timed(n, sequential)
    dash = await timed(n, portal_dashboard)
    api_t = await timed(n, api_thread)
    page_t = await timed(n, portal_thread)
    return {
        "dashboard_6_sources": figures(dash, seq, "portal_mashup", "sequential_api_calls"),
        "thread_page": figures(page_t, api_t, "portal_page", "gateway_api_call"),
    }
