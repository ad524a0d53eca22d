"""One call of an operation: decode, authorise, forward over NATS, return the reply.

Shared by the HTTP routes and the mashup endpoint, so a sub-request of a mashup
meets exactly the checks of a direct call.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from contracts.errors import ErrorCode
from gateway import metrics
from gateway.auth import Caller, authorize
from gateway.routes import BoundRoute
from gateway.state import Gateway
from mesh import safejson
from mesh.client import request_raw
from mesh.dpop import forwarded_headers
from mesh.errors import MeshError


def decode_body(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        return {}
    try:  # bounded in depth: a nested bomb is the caller's error, not a RecursionError
        body = safejson.loads(raw)
    except safejson.JSONError as exc:
        raise MeshError(
            ErrorCode.BAD_REQUEST, f"the request body is not valid JSON: {exc}"
        ) from None
    if not isinstance(body, dict):
        raise MeshError(
            ErrorCode.VALIDATION_FAILED,
            "the request body must be a JSON object",
            [{"loc": ["body"], "msg": "must be a JSON object", "type": "object_type"}],
        )
    return body


def merge_params(
    bound: BoundRoute,
    path_params: Mapping[str, str],
    query: Mapping[str, list[Any]],
    body: Mapping[str, Any],
) -> dict[str, Any]:
    """Body, then query, then path: the path's values win (they are what the policy binds)."""
    params = dict(body)
    for name, values in query.items():
        if values:
            params[name] = list(values) if name in bound.list_fields else values[-1]
    params.update(path_params)
    return params


async def call_operation(
    gw: Gateway,
    bound: BoundRoute,
    caller: Caller,
    params: dict[str, Any],
    wait: float | None = None,
) -> bytes:
    """Authorise ``caller`` for ``params``, forward, and return the reply JSON (or raise)."""
    op = bound.op
    # Denials come before validation: a caller who may not call learns nothing of the schema.
    authorize(op.policy, caller, params)
    try:
        request = op.request.model_validate(params)
    except ValidationError as exc:
        raise MeshError.from_validation(exc) from None
    # ... and the decision holds for the validated values (coercion may change them).
    # The policy reads only the fields it binds: dump just those.
    if bound.policy_fields:
        authorize(op.policy, caller, request.model_dump(include=set(bound.policy_fields)))
    started = time.perf_counter()
    code = "ok"
    payload = request.model_dump_json().encode()
    timeout = wait or gw.settings.request_timeout
    try:
        if not gw.tracing.enabled:
            dpop = forwarded_headers(caller.token, caller.proof)  # {} for a bearer token
            return await request_raw(gw.nats(), op.subject, payload, caller.token, timeout, dpop)
        with gw.tracing.client(op) as trace_headers:
            return await request_raw(
                gw.nats(),
                op.subject,
                payload,
                caller.token,
                timeout,
                {**trace_headers, **forwarded_headers(caller.token, caller.proof)},
            )
    except MeshError as exc:
        code = exc.code.value
        raise
    finally:
        _upstream_count(op.name, code).inc()
        _upstream_latency(op.name).observe(time.perf_counter() - started)


# Labelled children are cached: looking them up costs more than counting.
@functools.cache
def _upstream_count(operation: str, code: str) -> Any:
    return metrics.upstream_requests.labels(operation, code)


@functools.cache
def _upstream_latency(operation: str) -> Any:
    return metrics.upstream_latency.labels(operation)
