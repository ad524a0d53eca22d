"""Invoking an operation: grant, rate limit, schemas, idempotency, the call, filtering; the
audit record of each call (:mod:`services.connector.audit`)."""

from __future__ import annotations

import functools
import hashlib
import json
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import quote

from jsonschema import Draft202012Validator
from referencing.exceptions import Unresolvable
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.claims import Claims
from contracts.errors import ErrorCode
from contracts.v1 import connector as c
from mesh.errors import MeshError, conflict, forbidden, not_found
from services.connector import access, alliances, audit
from services.connector import repository as repo
from services.connector.invoker import IDEMPOTENT, InvokeFailure, Result, Target
from services.connector.models import Grant, IdempotencyRecord, OperationRow
from services.connector.plans import Snapshot
from services.connector.registry import _PLACEHOLDER
from services.connector.service import Connector


@dataclass(frozen=True)
class Caller:
    """Who an invocation acts for: a token's holder, or a flow's owner; ``home`` is the
    caller's own ecosystem when it calls across an alliance (None: the operation's)."""

    partner: str | None
    sub: str
    operator: bool = False
    home: str | None = None

    @classmethod
    def of(cls, claims: Claims) -> Caller:
        partner, home = alliances.viewer(claims)
        if home is not None:  # exchanged into the operation's ecosystem: never its operator
            return cls(partner, claims.sub, home=home)
        return cls(partner, claims.sub, access.is_operator(claims))

    @property
    def key_partner(self) -> str | None:
        """The partner an idempotency record is kept for (``<eco>/<partner>`` across)."""
        if self.home is None or self.partner is None:
            return self.partner
        key = f"{self.home}/{self.partner}"  # "/" is in no ecosystem's or partner's id
        return key if len(key) <= 100 else "~" + hashlib.sha256(key.encode()).hexdigest()


@dataclass
class Plan:
    op: OperationRow
    grant: Grant | None
    target: Target
    path: str
    params: dict[str, Any] | None
    body: Any
    idempotent: bool


async def invoke(
    cx: Connector,
    caller: Caller,
    eco: str,
    op_id: str,
    data: dict[str, Any],
    key: str | None = None,
    flow: str | None = None,
) -> c.InvokeReply:
    started = time.perf_counter()
    snap, fresh = await cx.plans.get(eco, op_id, lambda: _load(cx, eco, op_id))
    if fresh:
        cx.invoker.set_allowed(eco, list(snap.allowlist))
    plan = _plan(caller, snap, op_id)
    denial, replay = await _checks(cx, caller, plan, snap, data, key, flow is not None)
    if replay is not None:  # answered from the idempotency record: audited, not re-sent
        await _audit(cx, plan.op, caller, "replayed", replay.status, started, 0, flow)
        return replay
    if denial is not None:
        await _audit(cx, plan.op, caller, denial[0], None, started, 0, flow)
        raise denial[1]
    headers = {"Idempotency-Key": key} if key else None
    try:
        result = await cx.invoker.call(
            plan.target,
            plan.op.method,
            plan.path,
            params=plan.params,
            body=plan.body,
            headers=headers,
            timeout=plan.op.timeout_s,
        )
        output = _checked_output(plan, result)
    except InvokeFailure as exc:
        await _audit(
            cx,
            plan.op,
            caller,
            exc.outcome,
            exc.http_status,
            started,
            exc.attempts,
            flow,
            forget=(key, plan) if key and not plan.idempotent else None,
        )
        raise
    audit_id = await _audit(
        cx,
        plan.op,
        caller,
        "ok",
        result.status,
        started,
        result.attempts,
        flow,
        remember=(key, plan, output) if key and not plan.idempotent else None,
    )
    return c.InvokeReply(
        operation=op_id,
        status=result.status,
        output=output,
        attempts=result.attempts,
        audit_id=audit_id,
    )


async def _load(cx: Connector, eco: str, op_id: str) -> Snapshot:
    """Read what an invocation of ``op_id`` needs of the registry (see ``plans``)."""
    async with cx.db.transaction() as s:
        op = await repo.get_operation(s, eco, op_id)
        if op is None:
            return Snapshot(None, (), None, ())
        grants = tuple(await repo.list_grants(s, eco, "operation", op_id))
        backend = await repo.get_backend_by_id(s, op.backend_id)
        assert backend is not None
        allowlist = tuple(await repo.allowlist(s, eco))
        return Snapshot(op, grants, await cx.target(s, backend), allowlist)


def _plan(caller: Caller, snap: Snapshot, op_id: str) -> Plan:
    op, grants = snap.op, snap.grants
    partner, home = caller.partner, caller.home
    if home is not None:  # across an alliance: only what was granted to the caller's partner
        visible = op is not None and any(access.names(g, partner, home) for g in grants)
    else:
        visible = op is not None and (
            caller.operator
            or op.partner == partner
            or op.visibility == "ecosystem"
            or any(access.grant_applies(g, partner) for g in grants)
        )
    if op is None or not visible:
        raise not_found("operation")
    assert snap.target is not None
    grant = (
        None
        if home is None and op.partner == partner
        else next((g for g in grants if access.grant_applies(g, partner, home)), None)
    )
    return Plan(op, grant, snap.target, op.path, None, None, op.method in IDEMPOTENT)


async def _checks(
    cx: Connector,
    caller: Caller,
    plan: Plan,
    snap: Snapshot,
    data: dict[str, Any],
    key: str | None,
    force: bool,
) -> tuple[tuple[str, MeshError] | None, c.InvokeReply | None]:
    """The grant (and, across an alliance, the alliance), its rate limit, the input, then
    the idempotency key: (denial, replay).

    A transaction is opened only for what must be read at the call itself: the alliance
    of a call across, the calls counted against a rate limit, and the idempotency record."""
    denial = _deny(caller, plan, snap.grants)
    across = denial is None and caller.home is not None
    limited = denial is None and plan.grant is not None and plan.grant.rate_limit_per_minute
    keyed = key is not None and not plan.idempotent
    if not (across or limited or keyed):
        return denial or _shaped(plan, data), None
    async with cx.db.transaction() as s:
        if across:
            assert caller.home is not None
            refused = await alliances.call_refused(s, plan.op.eco, plan.op.partner, caller.home)
            denial = ("denied", refused) if refused is not None else None
        if limited and denial is None:
            denial = await _rate_limit(s, caller, plan)
        denial = denial or _shaped(plan, data)
        if denial is None and key and keyed:
            return None, await _reserve(cx, s, caller, plan, key, data, force)
    return denial, None


def _shaped(plan: Plan, data: dict[str, Any]) -> tuple[str, MeshError] | None:
    try:
        _shape(plan, data)
    except MeshError as exc:
        return "invalid_input", exc
    return None


def _deny(caller: Caller, plan: Plan, grants: tuple[Grant, ...]) -> tuple[str, MeshError] | None:
    if caller.partner is None:
        return "denied", forbidden("invocations act for a partner; the token has none")
    if caller.home is None and plan.op.partner == caller.partner:
        return None
    if plan.grant is None:
        revoked = any(access.names(g, caller.partner, caller.home) and g.revoked_at for g in grants)
        why = "the grant for this operation was revoked" if revoked else "no grant"
        return "denied", forbidden(f"{why}: the owner has not granted it to your partner")
    return None


async def _rate_limit(s: AsyncSession, caller: Caller, plan: Plan) -> tuple[str, MeshError] | None:
    assert plan.grant is not None and caller.partner is not None
    limit = plan.grant.rate_limit_per_minute
    assert limit is not None
    since = repo.now() - timedelta(minutes=1)
    calls = await repo.count_calls(
        s, plan.op.eco, plan.op.id, caller.partner, since, caller_eco=caller.home
    )
    if calls >= limit:
        return "rate_limited", MeshError(
            ErrorCode.RATE_LIMITED, f"the grant allows {limit} calls per minute"
        )
    return None


def _shape(plan: Plan, data: dict[str, Any]) -> None:
    """Validate the input and split it into path, query and body."""
    try:
        errors = [
            {"loc": ["input", *e.absolute_path], "msg": e.message, "type": "json_schema"}
            for e in validator(plan.op.input_schema).iter_errors(data)
        ]
    except Unresolvable:  # declared before declarations checked their references
        raise conflict(
            "the operation's input schema refers to a definition it does not hold; "
            "its owner must declare it again"
        ) from None
    if errors:
        raise MeshError(
            ErrorCode.VALIDATION_FAILED,
            "the input does not match the operation's input schema",
            errors,
        )
    rest = dict(data)
    names = _PLACEHOLDER.findall(plan.op.path)
    missing = [n for n in names if n not in rest]
    if missing:
        raise MeshError(ErrorCode.VALIDATION_FAILED, f"the input lacks {missing}")
    path = plan.op.path
    for name in names:
        path = path.replace("{" + name + "}", quote(str(rest.pop(name)), safe=""))
    plan.path = path
    if plan.op.method in ("GET", "DELETE"):
        plan.params = {k: v if isinstance(v, str) else json.dumps(v) for k, v in rest.items()}
    else:
        plan.body = rest


@functools.lru_cache(maxsize=1024)
def _validator(schema_json: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads(schema_json))


def validator(schema: dict[str, Any]) -> Draft202012Validator:
    """A (cached) validator of ``schema``: building one is slow, using one is fast."""
    return _validator(json.dumps(schema, sort_keys=True))


def _fingerprint(data: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


async def _reserve(
    cx: Connector,
    s: AsyncSession,
    caller: Caller,
    plan: Plan,
    key: str,
    data: dict[str, Any],
    force: bool,
) -> c.InvokeReply | None:
    """Reserve ``key``; return the stored reply when it was already used."""
    assert caller.key_partner is not None
    rec = await repo.get_idempotency(s, plan.op.eco, caller.key_partner, plan.op.id, key)
    if rec is None:
        await repo.add(
            s,
            IdempotencyRecord(
                eco=plan.op.eco,
                caller_partner=caller.key_partner,
                operation=plan.op.id,
                key=key,
                fingerprint=_fingerprint(data),
                status=None,
                output=None,
                audit_id=None,
                created_at=repo.now(),
            ),
        )
        return None
    if rec.fingerprint != _fingerprint(data):
        raise MeshError(
            ErrorCode.VALIDATION_FAILED, "this Idempotency-Key was used with another input"
        )
    if rec.status is not None:
        return c.InvokeReply(
            operation=plan.op.id,
            status=rec.status,
            output=rec.output,
            attempts=0,
            replayed=True,
            audit_id=rec.audit_id or "",
        )
    stale = repo.now() - timedelta(seconds=0 if force else cx.settings.idempotency_stale_s)
    if not await repo.reclaim_idempotency(s, rec, stale):
        raise conflict("a call with this Idempotency-Key is in progress")
    return None


def _checked_output(plan: Plan, result: Result) -> Any:
    if not 200 <= result.status < 300:
        raise InvokeFailure(
            ErrorCode.BAD_GATEWAY,
            f"the back-end answered {result.status}",
            "backend_error",
            result.attempts,
            result.status,
        )
    if plan.op.output_schema:
        try:
            fits = next(validator(plan.op.output_schema).iter_errors(result.body), None) is None
        except Unresolvable:  # declared before declarations checked their references
            fits = False
        if not fits:
            raise InvokeFailure(
                ErrorCode.BAD_GATEWAY,
                "the back-end's response does not match the output schema",
                "invalid_output",
                result.attempts,
                result.status,
            )
    if plan.grant is not None and plan.grant.response_fields is not None:
        return filter_fields(result.body, plan.grant.response_fields)
    return result.body


def filter_fields(value: Any, paths: list[str]) -> Any:
    """Keep only the dotted ``paths`` of ``value`` (applied to each item of a list)."""
    if isinstance(value, list):
        return [filter_fields(v, paths) for v in value]
    if not isinstance(value, dict):
        return None
    out: dict[str, Any] = {}
    heads: dict[str, list[str]] = {}
    for p in paths:
        head, _, tail = p.partition(".")
        heads.setdefault(head, []).append(tail)
    for head, tails in heads.items():
        if head in value:
            out[head] = value[head] if "" in tails else filter_fields(value[head], tails)
    return out


async def _audit(
    cx: Connector,
    op: OperationRow,
    caller: Caller,
    outcome: str,
    status: int | None,
    started: float,
    attempts: int,
    flow: str | None,
    remember: tuple[str, Plan, Any] | None = None,
    forget: tuple[str, Plan] | None = None,
) -> str:
    """Commit the call's audit record before it is answered: group-committed with the
    records of concurrent calls, or, for a call that settles its idempotency record, in
    that record's transaction."""
    row = audit.new_row(op, caller.partner, caller.sub, outcome, status, started, attempts, flow)
    row.caller_eco = caller.home  # a call across: in the audit of the caller's ecosystem too
    if not (remember or forget):  # the common call: its record is its only write
        await audit.commit(cx.audit, audit.values_of(row))
        return row.id
    async with cx.db.transaction() as s:
        await repo.add(s, row)
        key = (remember or forget)[0]  # type: ignore[index]
        assert caller.key_partner is not None
        rec = await repo.get_idempotency(s, op.eco, caller.key_partner, op.id, key)
        if rec is not None and forget:
            await s.delete(rec)
        elif rec is not None and remember:
            rec.status, rec.output, rec.audit_id = status, remember[2], row.id
    return row.id
