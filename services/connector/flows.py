"""Durable supply-chain flows: steps across partners' operations, run as the flow's owner.

The state is persisted after every step; a runner holds a lease on a flow while it
drives it, so after a crash another runner (or the restarted process) takes over
when the lease expires. Every step call carries the Idempotency-Key
``flow:<id>:<step>``, so a step that was in flight when the process died is not
applied twice by a back-end that honours the key. When a step fails, the done
steps' compensations run in reverse order.

A step may call an operation of an allied ecosystem granted to the flow's partner (its
``ecosystem`` names it): checked at start like any grant, and at every call, where an
alliance no longer active (or terms that no longer allow it) fails the step.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any

from contracts.claims import Claims
from contracts.errors import ErrorCode
from contracts.v1 import connector as c
from mesh.errors import MeshError, bad_request, forbidden, not_found
from services.connector import access, alliances
from services.connector import flow_repository as frepo
from services.connector import repository as repo
from services.connector.flow_check import check_steps, granted_operations
from services.connector.invocation import Caller, invoke
from services.connector.invoker import InvokeFailure
from services.connector.models import Flow
from services.connector.service import Connector

log = logging.getLogger(__name__)


def reply(f: Flow) -> c.FlowReply:
    return c.FlowReply(
        id=f.id,
        name=f.name,
        owner_partner=f.owner_partner,
        status=f.status,  # type: ignore[arg-type]
        steps=[
            c.FlowStepState.model_validate(
                {
                    **st,
                    "operation": step.get("operation"),
                    "ecosystem": step.get("ecosystem"),
                    "compensation": (step.get("compensate") or {}).get("operation"),
                }
            )
            for st, step in zip(f.state, f.steps, strict=True)
        ],
        error=f.error,
        created_at=f.created_at,
        updated_at=f.updated_at,
    )


def _local(call: c.FlowCall, eco: str) -> None:
    """A call naming the flow's own ecosystem is a call within it."""
    if call.ecosystem == eco:
        call.ecosystem = None


async def start(cx: Connector, claims: Claims, req: c.StartFlowRequest) -> c.FlowReply:
    alliances.own_routes_only(claims, "flows")
    if claims.partner is None:
        raise forbidden("a flow runs as a partner; the token has none")
    for st in req.steps:
        _local(st, req.eco)
        if st.compensate is not None:
            _local(st.compensate, req.eco)
    names = [st.name for st in req.steps]
    if len(set(names)) != len(names):
        raise bad_request("step names must be unique")
    async with cx.db.transaction() as s:
        ops = await granted_operations(s, claims, req)
        problems = check_steps(req.steps, req.input, ops)
        if problems:
            raise MeshError(
                ErrorCode.VALIDATION_FAILED,
                "the steps do not fit their operations' schemas",
                problems,
            )
        now = repo.now()
        row = Flow(
            id=uuid.uuid4().hex,
            eco=req.eco,
            name=req.name,
            owner_partner=claims.partner,
            owner_sub=claims.sub,
            owner_scopes=claims.scope,
            steps=[st.model_dump() for st in req.steps],
            input=req.input,
            state=[{"name": n, "status": "pending", "attempts": 0} for n in names],
            status="running",
            cursor=0,
            error=None,
            lease_owner=None,
            lease_until=None,
            created_at=now,
            updated_at=now,
        )
        await repo.add(s, row)
        out = reply(row)
    cx.flow_wake.set()
    return out


async def get(cx: Connector, claims: Claims, req: c.FlowRef) -> c.FlowReply:
    alliances.own_routes_only(claims, "flows")
    async with cx.db.transaction() as s:
        f = await frepo.get_flow(s, req.eco, req.flow)
        if f is None or not (access.is_operator(claims) or f.owner_partner == claims.partner):
            raise not_found("flow")
        return reply(f)


async def list_flows(cx: Connector, claims: Claims, req: c.ListFlowsRequest) -> c.FlowList:
    alliances.own_routes_only(claims, "flows")
    async with cx.db.transaction() as s:
        rows = await frepo.list_flows(s, req.eco, claims.partner, access.is_operator(claims))
        return c.FlowList(items=[reply(f) for f in rows])


def resolve(value: Any, flow_input: dict[str, Any], state: list[dict[str, Any]]) -> Any:
    """Replace ``"$input.a"`` and ``"$steps.<name>.output.b"`` strings with their values."""
    if isinstance(value, dict):
        return {k: resolve(v, flow_input, state) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, flow_input, state) for v in value]
    if not isinstance(value, str) or not value.startswith(("$input", "$steps.")):
        return value
    parts = value.split(".")
    if parts[0] == "$input":
        current: Any = flow_input
        rest = parts[1:]
    else:
        found = next((st for st in state if st["name"] == parts[1]), None)
        if found is None or found["status"] != "done" or parts[2:3] != ["output"]:
            raise bad_request(f"unresolved reference {value}")
        current, rest = found.get("output"), parts[3:]
    for p in rest:
        if not isinstance(current, dict) or p not in current:
            raise bad_request(f"unresolved reference {value}")
        current = current[p]
    return current


# --- the runner -------------------------------------------------------------------------------


async def run_forever(cx: Connector) -> None:
    """Claim runnable flows and drive up to ``flow_concurrency`` of them at a time."""
    me = uuid.uuid4().hex
    running: set[asyncio.Task[None]] = set()
    try:
        while True:
            cx.flow_wake.clear()
            try:
                while len(running) < cx.settings.flow_concurrency:
                    flow_id = await _claim_one(cx, me)
                    if flow_id is None:
                        break
                    task = asyncio.create_task(_drive_logged(cx, me, flow_id))
                    running.add(task)
                    task.add_done_callback(running.discard)
                    task.add_done_callback(lambda _: cx.flow_wake.set())  # a slot is free again
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("flow runner round failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(cx.flow_wake.wait(), cx.settings.flow_poll_s)
    finally:
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)


async def _drive_logged(cx: Connector, me: str, flow_id: str) -> None:
    try:
        await drive(cx, me, flow_id)
    except asyncio.CancelledError:
        raise
    except Exception:  # the lease expires and a runner takes the flow up again
        log.exception("flow run failed", extra={"flow": flow_id})


def _lease(cx: Connector) -> Any:
    return repo.now() + timedelta(seconds=cx.settings.flow_lease_s)


async def _claim_one(cx: Connector, me: str) -> str | None:
    async with cx.db.transaction() as s:
        for f in await frepo.runnable(s, repo.now()):
            if await frepo.claim(s, f, me, _lease(cx)):
                return f.id
    return None


async def _heartbeat(cx: Connector, me: str, flow_id: str) -> None:
    while True:
        await asyncio.sleep(cx.settings.flow_lease_s / 3)
        async with cx.db.transaction() as s:
            if not await frepo.renew(s, flow_id, me, _lease(cx)):
                return


async def drive(cx: Connector, me: str, flow_id: str) -> None:
    """Run a leased flow step by step until it finishes (or the lease is lost)."""
    beat = asyncio.create_task(_heartbeat(cx, me, flow_id))
    try:
        while await _advance(cx, me, flow_id):
            pass
    finally:
        beat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beat


async def _advance(cx: Connector, me: str, flow_id: str) -> bool:
    async with cx.db.transaction() as s:
        f = await frepo.held(s, flow_id, me)
        if f is None or f.status not in frepo.ACTIVE:
            return False
        compensating = f.status == "compensating"
        index, steps, owner = f.cursor, f.steps, Caller(f.owner_partner, f.owner_sub)
        comp = steps[index].get("compensate") if compensating and index >= 0 else None
        state = [dict(st) for st in f.state]  # references resolve against the done steps
        if comp or not compensating:  # the page shows the call under way from now on
            _update(f, index, _begun(compensating))
    if compensating:
        key = f"flow:{flow_id}:c{index}"
        retry = _on_retry(cx, me, flow_id, index, compensating=True)
        output, error = await _call(cx, owner, f, comp, state, key, retry) if comp else (None, None)
        return await _save_compensation(cx, me, flow_id, index, error)
    retry = _on_retry(cx, me, flow_id, index, compensating=False)
    key = f"flow:{flow_id}:{index}"
    output, error = await _call(cx, owner, f, steps[index], state, key, retry)
    return await _save_step(cx, me, flow_id, index, output, error)


def _stamp() -> str:
    return repo.now().isoformat()


def _begun(compensating: bool) -> dict[str, Any]:
    if compensating:
        return {
            "status": "compensating",
            "compensation_started_at": _stamp(),
            "compensation_attempts": 1,
        }
    return {"status": "running", "started_at": _stamp(), "attempts": 1, "error": None}


def _update(f: Flow, index: int, fields: dict[str, Any]) -> None:
    state = [dict(st) for st in f.state]
    state[index].update(fields)
    f.state, f.updated_at = state, repo.now()


Retry = Callable[[int, str], Awaitable[None]]


def _on_retry(cx: Connector, me: str, flow_id: str, index: int, compensating: bool) -> Retry:
    """Record that a call is tried again (its attempt number and the last failure)."""

    async def record(attempt: int, error: str) -> None:
        fields: dict[str, Any] = (
            {"compensation_attempts": attempt, "error": error}
            if compensating
            else {"status": "retrying", "attempts": attempt, "error": error}
        )
        async with cx.db.transaction() as s:
            f = await frepo.held(s, flow_id, me)
            if f is not None:
                _update(f, index, fields)

    return record


def transient(exc: MeshError) -> bool:
    """Failures worth trying again (the step's Idempotency-Key makes a repeat safe)."""
    if not isinstance(exc, InvokeFailure):
        return False
    if exc.outcome == "backend_error":
        return (exc.http_status or 500) >= 500
    return exc.outcome in ("timeout", "unreachable", "circuit_open")


async def _call(
    cx: Connector,
    owner: Caller,
    f: Flow,
    call: dict[str, Any],
    state: list[dict[str, Any]],
    key: str,
    on_retry: Retry,
) -> tuple[Any, str | None]:
    """Invoke one step (or compensation) as the owner: (output, None) or (None, error); a
    call of an allied ecosystem's operation is made there, as the owner from ``f.eco``."""
    across = call.get("ecosystem")
    who, eco = (replace(owner, home=f.eco), across) if across else (owner, f.eco)
    attempt = 1
    while True:
        try:
            data = resolve(call["input"], f.input, state)
            result = await invoke(cx, who, eco, call["operation"], data, key, flow=f.id)
            return result.output, None
        except MeshError as exc:
            if not transient(exc) or attempt >= cx.settings.flow_step_attempts:
                return None, exc.detail or exc.code.value
            await on_retry(attempt + 1, exc.detail or exc.code.value)
        await asyncio.sleep(cx.settings.flow_retry_backoff_s * 2 ** (attempt - 1))
        attempt += 1


async def _save_step(
    cx: Connector, me: str, flow_id: str, index: int, output: Any, error: str | None
) -> bool:
    async with cx.db.transaction() as s:
        f = await frepo.held(s, flow_id, me)
        if f is None:
            return False
        state = [dict(st) for st in f.state]
        if error is None:
            state[index].update(status="done", output=output, error=None, finished_at=_stamp())
            f.cursor = index + 1
            if f.cursor >= len(f.steps):
                f.status = "completed"
        else:
            state[index].update(status="failed", error=error, finished_at=_stamp())
            f.status, f.error, f.cursor = (
                "compensating",
                f"step {state[index]['name']}: {error}",
                index - 1,
            )
        f.state, f.updated_at = state, repo.now()
        return await _finish_if_done(cx, s, f)


async def _save_compensation(
    cx: Connector, me: str, flow_id: str, index: int, error: str | None
) -> bool:
    async with cx.db.transaction() as s:
        f = await frepo.held(s, flow_id, me)
        if f is None:
            return False
        state = [dict(st) for st in f.state]
        if index < 0:
            failed = any(st["status"] == "compensation_failed" for st in state)
            f.status = "failed" if failed else "compensated"
        else:
            if f.steps[index].get("compensate"):
                state[index].update(
                    status="compensation_failed" if error else "compensated",
                    error=error,
                    compensation_finished_at=_stamp(),
                )
            f.cursor = index - 1
        f.state, f.updated_at = state, repo.now()
        return await _finish_if_done(cx, s, f)


async def _finish_if_done(cx: Connector, s: Any, f: Flow) -> bool:
    if f.status in frepo.ACTIVE:
        return True
    f.lease_owner, f.lease_until = None, None
    data = c.FlowFinishedData(
        flow=f.id, name=f.name, owner_partner=f.owner_partner, status=f.status, error=f.error
    )
    await cx.rt.outbox.add(
        s, c.FlowFinished(ecosystem=f.eco, partner=f.owner_partner, subject=f.id, data=data)
    )
    return False
