"""Error codes shared by every process, with the HTTP status each maps to.

Over NATS an error reply carries the status in ``Nats-Service-Error-Code`` (the
micro protocol's numeric code), the code's title in ``Nats-Service-Error`` and an
:class:`ErrorBody` as JSON payload. At the HTTP edge the same body becomes an
RFC 9457 problem document.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

PROBLEM_TYPE_BASE = "https://partnermesh.dev/problems/"


class ErrorCode(StrEnum):
    BAD_REQUEST = "bad_request"
    VALIDATION_FAILED = "validation_failed"
    UNAUTHENTICATED = "unauthenticated"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    GONE = "gone"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    PRECONDITION_FAILED = "precondition_failed"
    RATE_LIMITED = "rate_limited"
    INTERNAL = "internal"
    BAD_GATEWAY = "bad_gateway"
    UNAVAILABLE = "unavailable"
    TIMEOUT = "timeout"
    OVERLOADED = "overloaded"


STATUS: dict[ErrorCode, int] = {
    ErrorCode.BAD_REQUEST: 400,
    ErrorCode.VALIDATION_FAILED: 422,
    ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.CONFLICT: 409,
    ErrorCode.GONE: 410,
    ErrorCode.PAYLOAD_TOO_LARGE: 413,
    ErrorCode.PRECONDITION_FAILED: 412,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.INTERNAL: 500,
    ErrorCode.BAD_GATEWAY: 502,
    ErrorCode.UNAVAILABLE: 503,
    ErrorCode.TIMEOUT: 504,
    ErrorCode.OVERLOADED: 503,
}

TITLES: dict[ErrorCode, str] = {
    ErrorCode.BAD_REQUEST: "Bad request",
    ErrorCode.VALIDATION_FAILED: "Validation failed",
    ErrorCode.UNAUTHENTICATED: "Authentication required",
    ErrorCode.FORBIDDEN: "Forbidden",
    ErrorCode.NOT_FOUND: "Not found",
    ErrorCode.CONFLICT: "Conflict",
    ErrorCode.GONE: "Gone",
    ErrorCode.PAYLOAD_TOO_LARGE: "Payload too large",
    ErrorCode.PRECONDITION_FAILED: "Precondition failed",
    ErrorCode.RATE_LIMITED: "Too many requests",
    ErrorCode.INTERNAL: "Internal error",
    ErrorCode.BAD_GATEWAY: "Bad gateway",
    ErrorCode.UNAVAILABLE: "Service unavailable",
    ErrorCode.TIMEOUT: "Timed out",
    ErrorCode.OVERLOADED: "Overloaded",
}

# Seconds a caller refused with ``overloaded`` waits before trying again (``Retry-After``).
OVERLOAD_RETRY_AFTER_S = 1


def code_for_status(status: int) -> ErrorCode:
    """The first code of ``status`` (503 is ``unavailable``; ``overloaded`` travels by name)."""
    for code, s in STATUS.items():
        if s == status:
            return code
    return ErrorCode.INTERNAL


class ErrorBody(BaseModel):
    """A coded error, as sent over NATS and rendered as RFC 9457 at the edge."""

    code: ErrorCode
    detail: str = ""
    errors: list[dict[str, Any]] | None = Field(
        default=None, description="Per-field validation errors, when code is validation_failed."
    )

    @property
    def status(self) -> int:
        return STATUS[self.code]
