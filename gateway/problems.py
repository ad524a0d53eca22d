"""RFC 9457 problem+json responses: the only shape an error takes at the edge."""

from __future__ import annotations

import json
import logging
from typing import Any

from contracts.errors import OVERLOAD_RETRY_AFTER_S, PROBLEM_TYPE_BASE, ErrorCode
from gateway.http import Reply, encode_headers
from mesh import context
from mesh.errors import MeshError

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
_PROBLEM_JSON = PROBLEM_JSON.encode()

# Statuses the edge produces that have no code of their own in contracts.errors.
_EDGE_ONLY = {
    405: ("method_not_allowed", "Method not allowed"),
    406: ("not_acceptable", "Not acceptable"),
    415: ("unsupported_media_type", "Unsupported media type"),
}
EDGE_ONLY_CODES = tuple(code for code, _title in _EDGE_ONLY.values())


def problem_doc(exc: MeshError, instance: str | None = None) -> dict[str, Any]:
    doc = exc.body().problem(instance)
    rid = context.request_id.get()
    if rid:
        doc["request_id"] = rid
    return doc


def problem_response(
    exc: MeshError, instance: str | None = None, headers: dict[str, str] | None = None
) -> Reply:
    if exc.code is ErrorCode.OVERLOADED:  # a service at capacity: the caller may come back
        headers = {**(headers or {}), "Retry-After": str(OVERLOAD_RETRY_AFTER_S)}
    return Reply(
        exc.status,
        json.dumps(problem_doc(exc, instance)).encode(),
        _PROBLEM_JSON,
        encode_headers(headers) if headers else None,
    )


def edge_problem(
    status: int,
    detail: str,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    """A problem for a status without an :class:`ErrorCode` (405, 415)."""
    doc = edge_problem_doc(status, detail, instance)
    return Reply(
        status,
        json.dumps(doc).encode(),
        _PROBLEM_JSON,
        encode_headers(headers) if headers else None,
    )


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
