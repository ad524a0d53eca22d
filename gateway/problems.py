"""RFC 9457 problem+json responses: the only shape an error takes at the edge."""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response

from contracts.errors import PROBLEM_TYPE_BASE, ErrorCode
from mesh import context
from mesh.errors import MeshError

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"

# Statuses the edge produces that have no code of their own in contracts.errors.
_EDGE_ONLY = {
    405: ("method_not_allowed", "Method not allowed"),
    415: ("unsupported_media_type", "Unsupported media type"),
}


def problem_doc(exc: MeshError, instance: str | None = None) -> dict[str, Any]:
    doc = exc.body().problem(instance)
    rid = context.request_id.get()
    if rid:
        doc["request_id"] = rid
    return doc


def problem_response(
    exc: MeshError, instance: str | None = None, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        json.dumps(problem_doc(exc, instance)).encode(),
        status_code=exc.status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def edge_problem(status: int, detail: str, instance: str | None = None) -> Response:
    """A problem for a status without an :class:`ErrorCode` (405, 415)."""
    doc = edge_problem_doc(status, detail, instance)
    return Response(json.dumps(doc).encode(), status_code=status, media_type=PROBLEM_JSON)


def edge_problem_doc(status: int, detail: str, instance: str | None = None) -> dict[str, Any]:
    code, title = _EDGE_ONLY[status]
    doc: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + code,
        "title": title,
        "status": status,
        "code": code,
        "detail": detail,
    }
    if instance:
        doc["instance"] = instance
    rid = context.request_id.get()
    if rid:
        doc["request_id"] = rid
    return doc


def internal_error(where: str, exc: BaseException | None = None) -> MeshError:
    """Log the exception; return what the caller may see (the request id only)."""
    rid = context.request_id.get() or "-"
    log.error("unhandled error", exc_info=exc or True, extra={"where": where})
    return MeshError(ErrorCode.INTERNAL, f"internal error (request id {rid})")


async def on_http_exception(request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405 (no route) rendered as problems."""
    assert isinstance(exc, StarletteHTTPException)
    path = request.url.path
    if exc.status_code == 405:
        return edge_problem(405, "this path does not accept that method", path)
    if exc.status_code == 404:
        return problem_response(MeshError(ErrorCode.NOT_FOUND, "no such route"), path)
    code = ErrorCode.BAD_REQUEST if exc.status_code < 500 else ErrorCode.INTERNAL
    return problem_response(MeshError(code, "the request could not be handled"), path)


async def on_mesh_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, MeshError)
    return problem_response(exc, request.url.path)


async def on_unhandled(request: Request, exc: Exception) -> Response:
    """Last resort: never a stack trace to the caller."""
    return problem_response(internal_error(request.url.path, exc), request.url.path)
