"""Mashups: several operations in one round trip, each authorised on its own.

``POST /v1/ecosystems/{eco}/mashup`` with up to ``mashup_max_items`` sub-requests.
They run concurrently through the same route table, policy check and NATS
forwarding as direct calls; each result carries its own status and body (the
reply, or a problem document), so one failure or timeout never hides the others.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from contracts.errors import ErrorCode
from gateway import metrics
from gateway.auth import Caller, require_ecosystem
from gateway.dpop import authenticate
from gateway.endpoints import Endpoint, guarded, json_body
from gateway.forward import call_operation, merge_params
from gateway.http import Incoming, Reply, encode_headers
from gateway.routes import MethodNotAllowed
from gateway.state import Gateway
from mesh import context, safejson
from mesh.errors import MeshError
from mesh.problems import Problem

PATH = "/v1/ecosystems/{eco}/mashup"
Scalar = str | int | float | bool


class SubRequest(BaseModel):
    id: str = Field(min_length=1, max_length=64, description="Echoed in the result")
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "GET"
    path: str = Field(
        pattern=r"^/v1/[^?#]*$", max_length=2000, description="An API path, without query"
    )
    query: dict[str, Scalar | list[Scalar]] = Field(default_factory=dict)
    body: dict[str, Any] | None = None


class MashupRequest(BaseModel):
    requests: list[SubRequest] = Field(min_length=1)
    timeout: float | None = Field(
        default=None, gt=0, description="Seconds for the whole batch (capped by the gateway)"
    )


class SubResult(BaseModel):
    id: str
    status: int
    body: Any = Field(description="The operation's reply, or an RFC 9457 problem document")
    ms: float


class MashupReply(BaseModel):
    results: list[SubResult]
    complete: bool = Field(description="True when every sub-request succeeded (2xx)")


def json_bytes(content: Any) -> bytes:
    """Compact UTF-8 JSON (as Starlette's JSONResponse renders it)."""
    return json.dumps(
        content, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
    ).encode()


def _problem(problem: Problem) -> tuple[int, Any]:
    return problem.status, problem.doc(context.request_id.get())


async def run_item(gw: Gateway, caller: Caller, item: SubRequest, wait: float) -> SubResult:
    started = time.perf_counter()
    try:
        bound, path_params = gw.routes.match(item.method, item.path)
        query = {k: v if isinstance(v, list) else [v] for k, v in item.query.items()}
        params = merge_params(bound, path_params, query, item.body or {})
        data = await asyncio.wait_for(call_operation(gw, bound, caller, params, wait), wait)
        status, body = bound.op.status, (safejson.loads(data) if data else None)
    except safejson.JSONError:  # a reply this edge cannot embed: the service's failure
        failure = MeshError(ErrorCode.BAD_GATEWAY, "the service's reply is not JSON within bounds")
        status, body = _problem(Problem.of(failure, item.path))
    except MethodNotAllowed:
        status, body = _problem(
            Problem.for_status(405, "this path does not accept that method", item.path)
        )
    except MeshError as exc:
        status, body = _problem(Problem.of(exc, item.path))
    except TimeoutError:
        timeout = MeshError(ErrorCode.TIMEOUT, "no answer within the batch timeout")
        status, body = _problem(Problem.of(timeout, item.path))
    metrics.mashup_items.labels(str(status)).inc()
    return SubResult(
        id=item.id, status=status, body=body, ms=round((time.perf_counter() - started) * 1000, 2)
    )


def parse(gw: Gateway, raw: dict[str, Any]) -> MashupRequest:
    try:
        batch = MashupRequest.model_validate(raw)
    except ValidationError as exc:
        raise MeshError.from_validation(exc) from None
    limit = gw.settings.mashup_max_items
    if len(batch.requests) > limit:
        raise MeshError(ErrorCode.VALIDATION_FAILED, f"a mashup takes at most {limit} sub-requests")
    if len({r.id for r in batch.requests}) != len(batch.requests):
        raise MeshError(ErrorCode.VALIDATION_FAILED, "sub-request ids must be unique")
    return batch


def mashup_endpoint(gw: Gateway) -> Endpoint:
    async def handle(request: Incoming, rl: dict[str, str]) -> Reply:
        info = request.info
        info.route = "mashup"
        caller = info.caller = await authenticate(  # sub-requests inherit its proof
            request.headers, request.scope, gw.token_verifier(), gw.proofs()
        )
        eco = request.params["eco"]
        require_ecosystem(caller, eco)
        batch = parse(gw, await json_body(request, gw))
        rl.update(
            await gw.rate_limiter().check(eco, caller, request.client_ip, len(batch.requests))
        )
        timeout = min(batch.timeout or gw.settings.request_timeout, gw.settings.request_timeout)
        results = await asyncio.gather(*(run_item(gw, caller, r, timeout) for r in batch.requests))
        reply = MashupReply(
            results=list(results), complete=all(200 <= r.status < 300 for r in results)
        )
        return Reply(200, json_bytes(reply.model_dump(mode="json")), headers=encode_headers(rl))

    return guarded(handle)
