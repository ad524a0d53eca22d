"""A NATS micro service whose endpoints are contract operations.

Every request: verify the caller's token (zero trust) and the parts of the operation's
policy that need no body (authentication, scope, roles), then decode the operation's
request model, apply the policy's bindings to it (ecosystem, partner), run the handler
``fn(claims, req)`` with the verified claims (never ``None``: every operation has a
caller) and the validated request, reply. Expected failures reply as NATS micro errors
(``Nats-Service-Error-Code`` = HTTP status, payload = :class:`contracts.errors.ErrorBody`);
anything else replies 500 with the request id and is logged, never shown.

At most ``max_concurrency`` requests are handled at once; one more is answered
``overloaded`` at once. A request whose caller's deadline (``Pm-Deadline``) has passed
is dropped unanswered: its caller has already given up.

With a ``tracer`` (OpenTelemetry), each handled request is a SERVER span that
continues the request's ``traceparent``; without one, no tracing code runs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar, overload

from nats.aio.client import Client
from nats.micro import add_service
from nats.micro.request import Request
from nats.micro.service import EndpointConfig, Service, ServiceConfig
from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import IntegrityError

from contracts import headers as h
from contracts.claims import Claims
from contracts.errors import ErrorCode
from contracts.policy import Operation, Policy, decide
from mesh import context, metrics
from mesh.db import unavailable as db_unavailable
from mesh.dpop import HEADER as DPOP
from mesh.dpop import nats_caller
from mesh.errors import MeshError, conflict
from mesh.tokens import TokenVerifier
from mesh.tracing import parent_context, traceparent_of

log = logging.getLogger(__name__)


Handler = Callable[[Claims, Any], Awaitable[BaseModel]]
"""``fn(claims, req)``: the verified caller and the validated request model; the reply.
The request id and traceparent are in :mod:`mesh.context` (logs and onward calls)."""

Caller = TypeVar("Caller")


@overload
def routed(routes: Mapping[Operation, Handler]) -> dict[Operation, Handler]: ...


@overload
def routed(
    routes: Mapping[Operation, Callable[[Caller, Any], Awaitable[BaseModel]]],
    caller: Callable[[Claims], Caller],
) -> dict[Operation, Handler]: ...


def routed(
    routes: Mapping[Operation, Callable[[Any, Any], Awaitable[BaseModel]]],
    caller: Callable[[Claims], Any] | None = None,
) -> dict[Operation, Handler]:
    """A service's operations and their handlers; with ``caller``, each handler receives
    the service's own view of the verified claims (``caller(claims)``) instead."""
    if caller is None:
        return dict(routes)
    return {op: _viewed(caller, fn) for op, fn in routes.items()}


def _viewed(
    caller: Callable[[Claims], Any], fn: Callable[[Any, Any], Awaitable[BaseModel]]
) -> Handler:
    async def handle(claims: Claims, req: Any) -> BaseModel:
        return await fn(caller(claims), req)

    return handle


def error_reply(exc: MeshError) -> tuple[str, str, bytes]:
    return str(exc.status), exc.title, exc.body().model_dump_json(exclude_none=True).encode()


def _decode(op: Operation, data: bytes) -> BaseModel:
    """The request model of ``data``: 400 when it is not JSON (pydantic-core's parser,
    bounded in depth like :mod:`mesh.safejson`), 422 when it does not fit the schema."""
    try:
        return op.request.model_validate_json(data or b"{}")
    except ValidationError as exc:
        if any(e["type"] == "json_invalid" for e in exc.errors(include_url=False)):
            raise MeshError(ErrorCode.BAD_REQUEST, "the request body is not valid JSON") from None
        raise MeshError.from_validation(exc) from None


@functools.cache
def unbound(policy: Policy) -> Policy:
    """``policy`` without its bindings to request fields: what is decided before the body."""
    return dataclasses.replace(policy, eco_param=None, partner_param=None)


def _bound_fields(op: Operation) -> set[str]:
    """The request fields ``op``'s policy compares with the token."""
    return {f for f in (op.policy.eco_param, op.policy.partner_param) if f}


def _deadline_of(headers: dict[str, str] | None) -> float | None:
    """The caller's deadline (``Pm-Deadline``, Unix seconds), if it sent a readable one."""
    raw = headers.get(h.DEADLINE) if headers else None
    if raw is None:
        return None
    try:
        return float(raw)
    except ValueError:
        return None


def _record_failure(span: Any, exc: MeshError) -> None:
    """The error code on the span; ERROR status for failures of the service (5xx), as
    OpenTelemetry's RPC conventions have it (a refused caller is not a server error)."""
    from opentelemetry.trace import Status, StatusCode

    span.set_attribute("error.type", exc.code.value)
    if exc.status >= 500:
        span.set_status(Status(StatusCode.ERROR, exc.code.value))


class MeshService:
    """Registers operations as endpoints of one NATS micro service (queue group = name)."""

    def __init__(
        self,
        nc: Client,
        name: str,
        version: str,
        verifier: TokenVerifier,
        description: str = "",
        max_concurrency: int = 64,
        tracer: Any = None,
    ) -> None:
        self.nc = nc
        self.tracer = tracer
        self.name = name
        self.version = version
        self.description = description
        self.verifier = verifier
        self._handlers: dict[str, tuple[Operation, Handler]] = {}
        self._micro: Service | None = None
        self._limit = max_concurrency
        self._busy = 0  # requests being handled now
        self._tasks: set[asyncio.Task[None]] = set()
        self._children: dict[tuple[str, str], tuple[Any, Any]] = {}

    def register(self, operation: Operation, handler: Handler) -> None:
        if operation.service != self.name:
            raise ValueError(f"{operation.subject} does not belong to service {self.name}")
        if operation.policy.public:  # a handler always has a caller
            raise ValueError(f"{operation.subject}: a mesh operation cannot be public")
        self._handlers[operation.subject] = (operation, handler)

    async def start(self) -> None:
        config = ServiceConfig(
            name=self.name,
            version=self.version,
            description=self.description,
            queue_group=self.name,
        )
        self._micro = await add_service(self.nc, config)
        for op, handler in self._handlers.values():
            await self._micro.add_endpoint(
                EndpointConfig(
                    name=op.name.replace(".", "_"),
                    subject=op.subject,
                    handler=self._spawner(op, handler),
                    metadata={"method": op.method, "path": op.path},
                )
            )
        # Ready means reachable: wait until the server has our subscriptions, so a
        # request sent from another connection right after start finds a responder.
        await self.nc.flush()

    async def stop(self) -> None:
        if self._micro is not None and self.nc.is_connected:
            await self._micro.stop()
            # Make sure the server has dropped our subscriptions before we go on.
            await self.nc.flush()
        self._micro = None
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=10)

    def _spawner(self, op: Operation, handler: Handler) -> Callable[[Request], Awaitable[None]]:
        # nats-py runs one subscription's callbacks one after another; handle each
        # request in its own task so slow calls do not queue behind each other. At most
        # ``max_concurrency`` at once: beyond, the caller hears ``overloaded`` at once
        # (and may try again) rather than waiting in a queue nobody bounds.
        fields = _bound_fields(op)
        handle = self._handle if self.tracer is None else self._handle_traced

        async def spawn(request: Request) -> None:
            limit = _deadline_of(request.headers)
            if limit is not None and limit <= time.time():
                self._metrics(op.name, "expired")[0].inc()  # the caller has given up
                return
            if self._busy >= self._limit:
                await self._refuse(op, request)
                return
            self._busy += 1
            context.deadline.set(limit)  # the task starts with a copy of this context
            task = asyncio.create_task(handle(op, handler, request, fields))
            self._tasks.add(task)
            task.add_done_callback(self._done)

        return spawn

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._busy -= 1

    async def _refuse(self, op: Operation, request: Request) -> None:
        self._metrics(op.name, ErrorCode.OVERLOADED.value)[0].inc()
        rid = (request.headers or {}).get(h.REQUEST_ID) or context.new_request_id()
        busy = MeshError(ErrorCode.OVERLOADED, f"{self.name} is at capacity; try again shortly")
        status, title, payload = error_reply(busy)
        await request.respond_error(status, title, payload, headers={h.REQUEST_ID: rid})

    async def _handle_traced(
        self, op: Operation, handler: Handler, request: Request, fields: set[str]
    ) -> None:
        from opentelemetry.trace import SpanKind

        attributes = {
            "messaging.system": "nats",
            "messaging.destination.name": op.subject,
            "rpc.service": self.name,
            "rpc.method": op.name,
        }
        parent = parent_context((request.headers or {}).get(h.TRACEPARENT))
        with self.tracer.start_as_current_span(
            f"{self.name}/{op.name}", context=parent, kind=SpanKind.SERVER, attributes=attributes
        ) as span:
            await self._handle(op, handler, request, fields, span)

    async def _handle(
        self,
        op: Operation,
        handler: Handler,
        request: Request,
        fields: set[str],
        span: Any = None,
    ) -> None:
        hdrs = request.headers or {}
        rid = hdrs.get(h.REQUEST_ID) or context.new_request_id()
        if span is None:
            tp = context.child_traceparent(hdrs.get(h.TRACEPARENT))
        else:  # the span continues the caller's trace; logs and onward calls name it
            tp = traceparent_of(span)
        context.request_id.set(rid)
        context.traceparent.set(tp)
        reply_headers = {h.REQUEST_ID: rid, h.TRACEPARENT: tp}
        started = time.perf_counter()
        code = "ok"
        try:
            claims, body = await self._authorize(op, hdrs, request.data, fields)
            reply = await handler(claims, body)
            await request.respond(reply.model_dump_json().encode(), headers=reply_headers)
        except Exception as exc:  # every failure gets a coded reply, never a traceback
            mesh_exc = self._as_mesh_error(exc, op, rid)
            code = mesh_exc.code.value
            if span is not None:
                _record_failure(span, mesh_exc)
            status, title, payload = error_reply(mesh_exc)
            await request.respond_error(status, title, payload, headers=reply_headers)
        finally:
            count, latency = self._metrics(op.name, code)
            count.inc()
            latency.observe(time.perf_counter() - started)

    def _metrics(self, operation: str, code: str) -> tuple[Any, Any]:
        # Labelled children are cached: looking them up costs more than counting.
        found = self._children.get((operation, code))
        if found is None:
            found = self._children[(operation, code)] = (
                metrics.nats_requests.labels(self.name, operation, code),
                metrics.nats_latency.labels(self.name, operation),
            )
        return found

    async def _authorize(
        self,
        op: Operation,
        hdrs: dict[str, str],
        data: bytes,
        fields: set[str],
    ) -> tuple[Claims, BaseModel]:
        # Who calls, before the body is read: a caller without a valid token (or without
        # the scope and role the operation needs) learns nothing of the request schema.
        # Bearer, or DPoP with the proof the edge checked (re-checked here: mesh.dpop)
        _, claims = await nats_caller(self.verifier, hdrs.get(h.AUTHORIZATION), hdrs.get(DPOP))
        denial = decide(unbound(op.policy), claims, {})
        if denial is None:
            body = _decode(op, data)
            # The bindings to the token (eco, partner) need the body: only the fields
            # they read are dumped.
            denial = decide(op.policy, claims, body.model_dump(include=fields))
        if denial is not None:
            raise MeshError(denial.code, denial.reason)
        if claims is None:  # not reached: register refuses public operations
            raise MeshError(ErrorCode.UNAUTHENTICATED, "a bearer access token is required")
        return claims, body

    @staticmethod
    def _as_mesh_error(exc: Exception, op: Operation, rid: str) -> MeshError:
        if isinstance(exc, MeshError):
            return exc
        if isinstance(exc, ValidationError):
            return MeshError.from_validation(exc)
        if isinstance(exc, IntegrityError):
            # A concurrent request won a uniqueness race (each handler checks first).
            return conflict("a concurrent change got there first; try again")
        if db_unavailable(exc):
            log.warning(
                "database unavailable in %s",
                op.name,
                extra={"error": f"{exc.__class__.__name__}: {exc}"[:300]},
            )
            return MeshError(
                ErrorCode.UNAVAILABLE,
                f"the service cannot reach its database now; try again (request id {rid})",
            )
        log.exception("unhandled error in %s", op.name)
        return MeshError(ErrorCode.INTERNAL, f"internal error (request id {rid})")
