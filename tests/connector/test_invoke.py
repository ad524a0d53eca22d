"""Invocation through the connector against real back-ends: healthy, slow, failing, flapping."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import pytest

from contracts.errors import ErrorCode
from contracts.v1 import connector as c
from mesh.errors import MeshError
from tests.connector.backends import BackendState
from tests.connector.conftest import Mesh, declare, register

ITEM_OUT = {
    "type": "object",
    "required": ["id", "price"],
    "properties": {"id": {"type": "string"}, "price": {"type": "number"}},
}
ITEM_IN = {
    "type": "object",
    "required": ["item_id"],
    "properties": {"item_id": {"type": "string", "pattern": "^[a-z0-9]+$"}},
    "additionalProperties": False,
}


@pytest.fixture
async def erp(
    mesh: Mesh, backend: tuple[str, BackendState], loopback_allowed: None
) -> BackendState:
    """fabrikam's ERP, with operations on it; contoso is granted all of them."""
    url, state = backend
    await register(mesh, url)
    ops: dict[str, tuple[str, str, dict[str, Any]]] = {
        "item": ("/items/{item_id}", "GET", {"input_schema": ITEM_IN, "output_schema": ITEM_OUT}),
        "slow": ("/slow", "GET", {"timeout_s": 0.3}),
        "fail-get": ("/fail", "GET", {}),
        "fail-post": ("/fail", "POST", {}),
        "flap": ("/flap", "GET", {}),
        "bad-output": ("/bad-output", "GET", {"output_schema": ITEM_OUT}),
        "bomb": ("/bomb", "GET", {}),
        "deep": ("/deep/{levels}", "GET", {}),
        "bomb-schema": ("/bomb", "GET", {"output_schema": ITEM_OUT}),
        "order": ("/orders", "POST", {}),
        "reserve": ("/reserve", "POST", {}),
    }
    for name, (path, method, extra) in ops.items():
        await declare(mesh, name, path, method, **extra)
        await mesh(
            c.CREATE_GRANT, "fatima", {"operation": f"fabrikam.{name}", "grantee": "contoso"}
        )
    return state


async def invoke(
    mesh: Mesh, op: str, data: dict[str, Any] | None = None, who: str = "carlos", **body: Any
) -> Any:
    return await mesh(c.INVOKE, who, {"operation": op, "input": data or {}, **body})


async def refused(coro: Awaitable[object]) -> MeshError:
    with pytest.raises(MeshError) as err:
        await coro
    return err.value


class TestHealthy:
    async def test_invoke_validates_and_returns_output(self, mesh: Mesh, erp: BackendState) -> None:
        reply = await invoke(mesh, "fabrikam.item", {"item_id": "a1"})
        assert reply.status == 200 and reply.attempts == 1
        assert reply.output["id"] == "a1" and reply.output["price"] == 10

    async def test_invalid_input_never_reaches_the_backend(
        self, mesh: Mesh, erp: BackendState
    ) -> None:
        err = await refused(invoke(mesh, "fabrikam.item", {"item_id": "A B", "x": 1}))
        assert err.code is ErrorCode.VALIDATION_FAILED and err.errors
        assert erp.hits["/items/A B"] == 0 and not any(p.startswith("/items") for p in erp.hits)

    async def test_output_not_matching_its_schema_is_a_bad_gateway(
        self, mesh: Mesh, erp: BackendState
    ) -> None:
        err = await refused(invoke(mesh, "fabrikam.bad-output"))
        assert err.code is ErrorCode.BAD_GATEWAY and "output schema" in err.detail


class TestHostileBackend:
    async def test_a_nested_reply_is_text_not_a_crash(self, mesh: Mesh, erp: BackendState) -> None:
        reply = await invoke(mesh, "fabrikam.bomb")
        assert reply.status == 200 and isinstance(reply.output, str)
        assert reply.output.startswith("[[[")

    async def test_a_reply_deeper_than_it_may_travel_is_text(
        self, mesh: Mesh, erp: BackendState
    ) -> None:
        """Replies travel on inside invocation replies and mashups: they keep room."""
        deep = await invoke(mesh, "fabrikam.deep", {"levels": "150"})
        assert isinstance(deep.output, str) and deep.output.startswith("[[[")
        shallow = await invoke(mesh, "fabrikam.deep", {"levels": "50"})
        assert isinstance(shallow.output, list)

    async def test_a_nested_reply_fails_its_output_schema(
        self, mesh: Mesh, erp: BackendState
    ) -> None:
        err = await refused(invoke(mesh, "fabrikam.bomb-schema"))
        assert err.code is ErrorCode.BAD_GATEWAY and "output schema" in err.detail


class TestUnhealthy:
    async def test_slow_backend_times_out(self, mesh: Mesh, erp: BackendState) -> None:
        err = await refused(invoke(mesh, "fabrikam.slow"))
        assert err.code is ErrorCode.TIMEOUT

    async def test_failing_get_is_retried_then_reported(
        self, mesh: Mesh, erp: BackendState
    ) -> None:
        err = await refused(invoke(mesh, "fabrikam.fail-get"))
        assert err.code is ErrorCode.BAD_GATEWAY
        assert erp.hits["/fail"] == 3  # max_attempts for an idempotent method

    async def test_failing_post_is_not_retried(self, mesh: Mesh, erp: BackendState) -> None:
        err = await refused(invoke(mesh, "fabrikam.fail-post"))
        assert err.code is ErrorCode.BAD_GATEWAY
        assert erp.hits["/fail"] == 1

    async def test_flapping_get_succeeds_after_retries(self, mesh: Mesh, erp: BackendState) -> None:
        reply = await invoke(mesh, "fabrikam.flap")
        assert reply.status == 200 and reply.attempts == 3 and reply.output["hit"] == 3

    async def test_circuit_opens_and_spares_the_backend(
        self, mesh: Mesh, erp: BackendState
    ) -> None:
        for _ in range(3):  # breaker_failures=3 consecutive failures (POST: one attempt each)
            await refused(invoke(mesh, "fabrikam.fail-post"))
        err = await refused(invoke(mesh, "fabrikam.item", {"item_id": "a1"}))
        assert err.code is ErrorCode.UNAVAILABLE and "circuit" in err.detail
        assert not any(p.startswith("/items") for p in erp.hits)

    async def test_circuit_half_opens_after_cooldown(self, mesh: Mesh, erp: BackendState) -> None:
        import asyncio

        for _ in range(3):
            await refused(invoke(mesh, "fabrikam.fail-post"))
        await asyncio.sleep(0.6)  # breaker_cooldown_s=0.5: one trial call goes through
        reply = await invoke(mesh, "fabrikam.item", {"item_id": "a1"})
        assert reply.status == 200


class TestIdempotency:
    async def test_same_key_is_applied_once_and_replayed(
        self, mesh: Mesh, erp: BackendState
    ) -> None:
        first = await invoke(mesh, "fabrikam.order", {"sku": "x", "qty": 2}, idempotency_key="k1")
        again = await invoke(mesh, "fabrikam.order", {"sku": "x", "qty": 2}, idempotency_key="k1")
        assert again.replayed and again.output == first.output and again.status == first.status
        assert erp.effects["order"] == 1 and erp.hits["/orders"] == 1
        assert erp.seen_headers[-1]["idempotency-key"] == "k1"
        audit = (await mesh(c.AUDIT, "fatima", {})).items
        assert sorted(a.outcome for a in audit) == ["ok", "replayed"]

    async def test_same_key_with_other_input_is_refused(
        self, mesh: Mesh, erp: BackendState
    ) -> None:
        await invoke(mesh, "fabrikam.order", {"qty": 1}, idempotency_key="k2")
        err = await refused(invoke(mesh, "fabrikam.order", {"qty": 9}, idempotency_key="k2"))
        assert err.code is ErrorCode.VALIDATION_FAILED
        assert erp.effects["order"] == 1

    async def test_a_key_in_flight_is_a_conflict(self, mesh: Mesh, erp: BackendState) -> None:
        import asyncio

        erp.gated = True
        first = asyncio.create_task(
            invoke(mesh, "fabrikam.reserve", {"qty": 1}, idempotency_key="k3")
        )
        await asyncio.wait_for(erp.reached_gate.wait(), 10)
        err = await refused(invoke(mesh, "fabrikam.reserve", {"qty": 1}, idempotency_key="k3"))
        assert err.code is ErrorCode.CONFLICT
        erp.gate.set()
        done = await first
        again = await invoke(mesh, "fabrikam.reserve", {"qty": 1}, idempotency_key="k3")
        assert again.replayed and again.output == done.output
        assert erp.hits["/reserve"] == 1 and erp.effects["reservation"] == 1

    async def test_a_failed_call_frees_its_key(self, mesh: Mesh, erp: BackendState) -> None:
        erp.fail_kinds.add("order")
        await refused(invoke(mesh, "fabrikam.order", {"qty": 1}, idempotency_key="k4"))
        erp.fail_kinds.clear()
        reply = await invoke(mesh, "fabrikam.order", {"qty": 1}, idempotency_key="k4")
        assert not reply.replayed and erp.effects["order"] == 1

    async def test_without_key_each_call_applies(self, mesh: Mesh, erp: BackendState) -> None:
        await invoke(mesh, "fabrikam.order", {"qty": 1})
        await invoke(mesh, "fabrikam.order", {"qty": 1})
        assert erp.effects["order"] == 2


class TestAudit:
    async def test_both_partners_see_the_record_and_others_do_not(
        self, mesh: Mesh, erp: BackendState
    ) -> None:
        await invoke(mesh, "fabrikam.item", {"item_id": "a1"})
        await refused(invoke(mesh, "fabrikam.fail-post"))
        for who in ("carlos", "fatima", "chloe", "olivia"):
            items = (await mesh(c.AUDIT, who, {})).items
            assert {(r.operation, r.outcome) for r in items} == {
                ("fabrikam.item", "ok"),
                ("fabrikam.fail-post", "backend_error"),
            }
            ok = next(r for r in items if r.outcome == "ok")
            assert ok.caller_partner == "contoso" and ok.owner_partner == "fabrikam"
            assert ok.caller == "carlos" and ok.status == 200 and ok.latency_ms > 0
        assert (await mesh(c.AUDIT, "nadia", {})).items == []


class TestSchemaReferences:
    """A declared schema is self-contained: its ``$ref``s resolve inside it, never
    fetched from elsewhere, so an invocation never fails on a reference."""

    async def test_references_that_do_not_resolve_are_refused_at_declaration(
        self, mesh: Mesh, erp: BackendState
    ) -> None:
        for ref in ("#/$defs/missing", "https://schemas.example/item.json", "other.json#/a"):
            schema = {"type": "object", "properties": {"item_id": {"$ref": ref}}}
            err = await refused(declare(mesh, "refs", "/items/{item_id}", input_schema=schema))
            assert err.code is ErrorCode.BAD_REQUEST and repr(ref) in err.detail
        catalogue = await mesh(c.CATALOGUE, "fatima", {})
        assert "refs" not in {op.name for op in catalogue.items}

    async def test_local_and_nested_references_resolve_and_validate(
        self, mesh: Mesh, erp: BackendState
    ) -> None:
        schema = {
            "type": "object",
            "required": ["item_id"],
            "properties": {
                "item_id": {"$ref": "#/$defs/id"},
                "note": {
                    "$id": "https://x.test/note",
                    "$ref": "#/$defs/text",
                    "$defs": {"text": {"type": "string", "maxLength": 5}},
                },
            },
            "$defs": {"id": {"type": "string", "pattern": "^[a-z0-9]+$"}},
        }
        await declare(mesh, "refd", "/items/{item_id}", input_schema=schema)
        await mesh(c.CREATE_GRANT, "fatima", {"operation": "fabrikam.refd", "grantee": "contoso"})
        assert (await invoke(mesh, "fabrikam.refd", {"item_id": "a1"})).status == 200
        err = await refused(invoke(mesh, "fabrikam.refd", {"item_id": "A B"}))
        assert err.code is ErrorCode.VALIDATION_FAILED and err.errors
        err = await refused(invoke(mesh, "fabrikam.refd", {"item_id": "a1", "note": "too long"}))
        assert err.code is ErrorCode.VALIDATION_FAILED and err.errors
