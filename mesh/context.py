"""Per-request context carried through logs, NATS headers and traces."""

from __future__ import annotations

import contextvars
import random
import re

# Correlation ids, not secrets: the process's PRNG (as OpenTelemetry's id generator
# does) instead of a system call per id. ``random`` reseeds itself in a forked child.
_bits = random.getrandbits

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
traceparent: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "traceparent", default=None
)
# When the request being served must be answered by (Unix time, seconds): set by the
# gateway's whole-request deadline and by a service from the caller's ``Pm-Deadline``;
# an onward NATS call waits no longer and carries it on.
deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("deadline", default=None)


def new_request_id() -> str:
    return f"{_bits(64):016x}"


_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def safe_request_id(sent: str) -> str:
    """The caller's request id (``X-Request-Id``) when it is sane, else a new one."""
    return sent if _SAFE_ID.match(sent) else new_request_id()


def new_traceparent() -> str:
    """A fresh W3C trace context: version-traceid-spanid-flags."""
    return f"00-{_bits(128) or 1:032x}-{_span_id()}-01"


def _span_id() -> str:
    return f"{_bits(64) or 1:016x}"  # all zeros is not a valid id


def child_traceparent(parent: str | None) -> str:
    """Continue ``parent``'s trace with a new span id (or start a trace)."""
    if parent:
        parts = parent.split("-")
        if len(parts) == 4 and len(parts[1]) == 32 and len(parts[2]) == 16:
            return f"{parts[0]}-{parts[1]}-{_span_id()}-{parts[3]}"
    return new_traceparent()


def trace_id(tp: str | None) -> str | None:
    if tp and tp.count("-") == 3:
        return tp.split("-")[1]
    return None
