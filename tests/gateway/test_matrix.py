"""The authorization matrix: every route of a running gateway, called as every kind of caller.

Generated from ``contracts.registry.OPERATIONS`` and their policies: uvicorn on
loopback, real NATS, every service under ``services/`` started generically. A caller
the policy refuses must get exactly the policy's status (401/403) from the gateway itself
(nothing forwarded); a caller it admits must be forwarded and get past the service's own
policy check: any answer but 401 and 5xx, and a 403 only from a data-dependent check of
the service (e.g. "a person edits only their own profile"), never from the policy.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import httpx
import nats
import pytest
from pydantic import BaseModel

from contracts.claims import Claims, Role, Scope
from contracts.policy import Operation, Policy
from contracts.registry import OPERATIONS
from contracts.subjects import event_subject
from contracts.v1 import system
from contracts.v1.identity import RevokedSubject, TokenRevoked, TokenRevokedData
from gateway import metrics
from gateway.app import create_app
from gateway.routes import RouteConfigError, RouteTable, check_operation
from mesh.nats import ensure_event_stream
from mesh.service import MeshService
from tests.gateway.conftest import bearer, gateway_settings
from tests.gateway.matrix_support import (
    ALLIED_KINDS,
    ALLIED_TERMS,
    ECO,
    ENDED_ALLY,
    ENDED_AT,
    KINDS,
    SYNTHETIC,
    Callers,
    call_fields,
    call_params,
    discover_services,
)
from tests.support import infra
from tests.support.services import run_service
from tests.support.tokens import TestKeys, TokenFactory

SERVICES = discover_services()
# How contracts.policy.decide words its denials (a service repeating the gateway's check).
POLICY_REASONS = (
    "a bearer access token is required",
    "the token lacks scope",
    "this operation needs one of the roles",
    "the token was issued for another ecosystem",
    "the token acts for another partner",
)
SERVED = {s.name for s in SERVICES}


@pytest.fixture(scope="module")
async def ended_alliance(nats_url: str) -> int:
    """The per-origin cut-off identity publishes when an alliance with ``ENDED_ALLY`` ends:
    every token of acme exchanged from there before then is refused. Returns its time."""
    cut = RevokedSubject(origin=ENDED_ALLY, before=ENDED_AT, until=ENDED_AT + 3600)
    event = TokenRevoked(ecosystem=ECO, data=TokenRevokedData(subjects=[cut]))
    nc = await nats.connect(nats_url)
    try:
        await ensure_event_stream(nc.jetstream())
        await nc.jetstream().publish(
            event_subject(ECO, event.type), event.model_dump_json().encode()
        )
    finally:
        await nc.drain()
    return ENDED_AT


async def until_cut_off(client: httpx.AsyncClient, callers: Callers) -> None:
    """Wait until the gateway's revocation feed has applied :func:`ended_alliance`."""
    token = callers.token("allied_cut_off", system.ECHO)
    assert token is not None
    deadline, echo = time.monotonic() + 30, f"/v1/ecosystems/{ECO}/echo"
    while (await client.get(echo, headers=bearer(token))).status_code != 401:
        assert time.monotonic() < deadline, "the gateway never applied the alliance's cut-off"
        await asyncio.sleep(0.05)


@pytest.fixture(scope="module", params=infra.database_engines())
async def mesh(
    request: pytest.FixtureRequest,
    nats_url: str,
    test_keys: TestKeys,
    postgres_admin_url: str | None,
    tmp_path_factory: pytest.TempPathFactory,
    callers: Callers,
    ended_alliance: int,
) -> AsyncIterator[httpx.AsyncClient]:
    """Every service under services/ (each with its own database) and a gateway in front,
    once it refuses tokens exchanged across the ended alliance."""
    async with AsyncExitStack() as stack:
        for spec in SERVICES:
            if request.param == "sqlite":
                url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp(spec.name) / 'db.sqlite'}"
            else:
                assert postgres_admin_url, "postgres engine selected without a server"
                url, name = await infra.create_pg_database(postgres_admin_url)
                stack.push_async_callback(infra.drop_pg_database, postgres_admin_url, name)
            await stack.enter_async_context(
                run_service(
                    spec.name,
                    spec.settings_cls,
                    spec.metadata,
                    spec.register,
                    nats_url=nats_url,
                    database_url=url,
                    verifier=test_keys.verifier(),
                )
            )
        settings = gateway_settings(
            nats_url, rate_limits_enabled=False, access_log=False, request_timeout=10.0
        )
        base = await stack.enter_async_context(
            infra.serve_app(create_app(settings, verifier=test_keys.verifier()))
        )
        client = await stack.enter_async_context(httpx.AsyncClient(base_url=base, timeout=10))
        await until_cut_off(client, callers)
        yield client


@pytest.fixture(scope="module")
def callers(tokens: TokenFactory) -> Callers:
    """Tokens of every caller kind (real RS256, plus forged, expired and unsigned ones)."""
    return Callers(tokens)


def forwarded(op_name: str) -> float:
    """How many calls of the operation the gateway has forwarded over NATS so far."""
    samples = next(iter(metrics.upstream_requests.collect())).samples
    return sum(
        s.value for s in samples if s.name.endswith("_total") and s.labels["operation"] == op_name
    )


async def call_as(
    mesh: httpx.AsyncClient, callers: Callers, op: Operation, kind: str
) -> httpx.Response:
    token = callers.token(kind, op)
    fields = call_fields(op)
    takes_body = op.method in ("POST", "PUT", "PATCH")
    return await mesh.request(
        op.method,
        op.path.format(**call_params(op)),
        headers=bearer(token) if token else {},
        json=fields if takes_body else None,
        params=None if takes_body else fields,
    )


def check(op: Operation, kind: str, expected: int | None, r: httpx.Response) -> str | None:
    """What is wrong with the answer ``r`` to ``kind`` calling ``op`` (None: all is well)."""
    if expected is not None:
        if r.status_code != expected or "problem+json" not in r.headers["content-type"]:
            return f"{kind}: expected {expected}, got {r.status_code} {r.text}"
        return None
    if r.status_code in (401, 403) and r.json().get("detail", "").startswith(POLICY_REASONS):
        return f"{kind}: admitted by the policy but refused: {r.status_code} {r.text}"
    if r.status_code == 401 or (r.status_code >= 500 and op.service in SERVED):
        return f"{kind}: {r.status_code} {r.text}"
    return None


def edge_rejected(r: httpx.Response) -> bool:
    """Refused by the edge's validation of the matrix's best-effort sample (never forwarded)."""
    schema_error = "the request does not match its schema"
    return r.status_code == 422 and r.json().get("detail") == schema_error


@pytest.mark.parametrize("op", OPERATIONS, ids=lambda op: op.name)
async def test_matrix(mesh: httpx.AsyncClient, callers: Callers, op: Operation) -> None:
    """Every caller kind in turn; the gateway must forward exactly the calls the policy admits."""
    problems = []
    for kind in KINDS:
        expected = callers.expected_denial(kind, op)
        before = forwarded(op.name)
        r = await call_as(mesh, callers, op, kind)
        hops = forwarded(op.name) - before
        problem = check(op, kind, expected, r)
        if problem is None and expected is not None and hops:
            problem = f"{kind}: denied by the service, but the gateway should have refused it"
        if problem is None and expected is None and hops != 1 and not edge_rejected(r):
            problem = f"{kind}: admitted by the policy, but not forwarded: {r.status_code} {r.text}"
        if problem:
            problems.append(problem)
    assert not problems, f"{op.name}:\n" + "\n".join(problems)
    if op.service not in SERVED:
        pytest.skip(f"denials checked; no service under services/ serves {op.service} yet")


def granted_across(op: Operation, roles: tuple[Role, ...]) -> bool:
    """What the alliance's terms reach, written out: the route's scope is one the terms give,
    one of its roles is one they give, and it is bound to no partner (an exchanged token
    acts for no partner of this ecosystem) unless one of those roles bypasses the binding."""
    p = op.policy
    return p.public or (
        p.scope in ALLIED_TERMS.scopes
        and not p.roles.isdisjoint(roles)
        and (p.partner_param is None or not p.partner_bypass.isdisjoint(roles))
    )


class TestAlliedCallers:
    """A token exchanged across an alliance (``eco`` acme, ``fed.eco`` meridian) is
    admitted by exactly the routes the terms' roles and scopes reach; the matrix above
    calls every route with it and checks the gateway and the services agree."""

    @pytest.mark.parametrize("op", OPERATIONS, ids=lambda op: op.name)
    def test_admitted_only_where_the_terms_reach(self, callers: Callers, op: Operation) -> None:
        for kind, roles in ALLIED_KINDS.items():
            want = None if granted_across(op, roles) else 403
            assert callers.expected_denial(kind, op) == want, kind

    def test_reads_and_calls_across_never_administration(self) -> None:
        reached = {op for op in OPERATIONS if granted_across(op, ALLIED_TERMS.acting_roles)}
        names = {op.name for op in reached}
        assert {
            "profile.directory.search",
            "profile.ally.person.card",
            "profile.person.get",
            "connector.invoke",
        } <= names
        never = {Scope.ADMIN, Scope.BROKER_CURATE, Scope.PROFILE_WRITE, Scope.CONNECTOR_ADMIN}
        assert not [op.name for op in reached if op.policy.scope in never]
        assert len(reached) < len(OPERATIONS) / 2  # the terms grant a narrow slice


class TestEveryRouteHasAPolicy:
    @pytest.mark.parametrize("op", OPERATIONS, ids=lambda op: op.name)
    def test_registry_operation_is_servable(self, op: Operation) -> None:
        check_operation(op)

    def test_the_registry_loads_as_one_route_table(self) -> None:
        assert len(RouteTable(OPERATIONS).routes) == len(OPERATIONS)

    def test_matrix_covers_a_real_service(self) -> None:
        assert "profile" in SERVED

    @pytest.mark.parametrize(
        ("change", "why"),
        [
            ({"policy": None}, "needs a Policy"),
            ({"policy": Policy(scope=None)}, "must name a scope"),
            ({"policy": Policy(scope=Scope.MESH_PING, partner_param="partner")}, "lacks"),
            ({"policy": Policy(scope=Scope.MESH_PING, eco_param=None)}, "bind the token"),
            ({"path": "/v1/ecosystems/{eco}/things/{thing}"}, "path parameter thing"),
            ({"method": "TRACE"}, "unsupported method"),
        ],
        ids=["no-policy", "no-scope", "unbound-partner", "unbound-eco", "path-param", "method"],
    )
    def test_an_unenforceable_route_fails_the_build(
        self, nats_url: str, change: dict[str, None] | dict[str, Policy] | dict[str, str], why: str
    ) -> None:
        broken = dataclasses.replace(system.ECHO, name="broken.op", **change)
        with pytest.raises(RouteConfigError, match=why):
            RouteTable([*OPERATIONS, broken])
        with pytest.raises(RouteConfigError):
            create_app(gateway_settings(nats_url), operations=[broken])

    def test_a_public_route_needs_no_scope(self) -> None:
        public = dataclasses.replace(
            system.ECHO, name="public.op", policy=Policy(scope=None, public=True)
        )
        check_operation(public)


# A hand-written table for policies the registry may not exercise yet, so the matrix
# machinery is proven against statuses that are not computed by ``decide`` itself.
OK = 200
TABLE: dict[str, dict[str, int]] = {
    # anonymous, expired, bad sig, alg none, exchanged across an ended alliance,
    # other eco, other partner, member, partner_admin, broker, operator, missing scope,
    # allied member, allied partner_admin (no partner of acme: never a partner's own route)
    "partner_private": dict(
        zip(KINDS, (*[401] * 5, 403, 403, OK, OK, 403, OK, 403, 403, 403), strict=True)
    ),
    "curate": dict(
        zip(KINDS, (*[401] * 5, 403, 403, 403, 403, OK, OK, 403, 403, 403), strict=True)
    ),
    "partner_admin": dict(
        zip(KINDS, (*[401] * 5, 403, 403, 403, OK, 403, OK, 403, 403, 403), strict=True)
    ),
}


@pytest.fixture(scope="module")
async def synthetic_mesh(
    nats_url: str, test_keys: TestKeys, callers: Callers, ended_alliance: int
) -> AsyncIterator[httpx.AsyncClient]:
    """A real MeshService serving the synthetic operations, and a gateway routing them."""
    nc = await nats.connect(nats_url)
    service = MeshService(nc, "testing", "0.0.1", test_keys.verifier())

    async def echo(claims: Claims, body: BaseModel) -> BaseModel:
        return body

    for op in SYNTHETIC:
        service.register(op, echo)
    await service.start()
    settings = gateway_settings(nats_url, rate_limits_enabled=False, access_log=False)
    app = create_app(settings, verifier=test_keys.verifier(), operations=(*OPERATIONS, *SYNTHETIC))
    async with infra.serve_app(app) as base, httpx.AsyncClient(base_url=base) as client:
        await until_cut_off(client, callers)
        yield client
    await service.stop()
    await nc.drain()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("op", SYNTHETIC, ids=lambda op: op.name)
async def test_matrix_machinery_against_a_written_table(
    synthetic_mesh: httpx.AsyncClient, callers: Callers, op: Operation, kind: str
) -> None:
    want = TABLE[op.name.removeprefix("testing.")][kind]
    computed = callers.expected_denial(kind, op)
    assert (computed or OK) == want, "the matrix computes another status than the table"
    token = callers.token(kind, op)
    r = await synthetic_mesh.request(
        op.method,
        op.path.format(**call_params(op)),
        headers=bearer(token) if token else {},
        json={} if op.method in ("POST", "PUT") else None,
    )
    assert r.status_code == want, f"{op.name} as {kind}: {r.text}"
