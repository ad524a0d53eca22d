"""A flow's steps as its page shows them, and their live updates while it runs.

The page renders the step list itself (it works without JavaScript: a refresh link while
the flow runs). With JavaScript, ``flows.js`` opens ``/api/connectors/flows/<id>/events``:
a Server-Sent Events stream on which the portal sends the same step list, rendered
anew, each time the connector's view of the flow changes, and ends it once the flow is
over. The portal asks the connector at once, then less often while nothing changes
(every 0.25 s, up to every 2 s); a stream lasts at most two minutes, after which the
browser reconnects (with a fresh token). No state is kept per stream.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from portal.web import TEMPLATES

ACTIVE = ("running", "compensating")
LABELS = {
    "done": "succeeded",
    "compensation_failed": "compensation failed",
}
FIRST_POLL_S, MAX_POLL_S, STREAM_S = 0.25, 2.0, 120.0


def _instant(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def took(start: Any, end: Any, now: datetime) -> str:
    """``320 ms`` or ``1.4 s`` between two instants (to ``now`` while it runs); empty if
    it never started."""
    begun, finished = _instant(start), _instant(end)
    if begun is None:
        return ""
    seconds = max(0.0, ((finished or now) - begun).total_seconds())
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    return f"{seconds:.1f} s" if seconds < 60 else f"{seconds / 60:.1f} min"


def label(step: dict[str, Any], flow_status: str) -> str:
    status = str(step.get("status"))
    if status == "retrying":
        return f"retrying (attempt {step.get('attempts')})"
    if status == "pending" and flow_status not in ACTIVE:
        return "not run"
    return LABELS.get(status, status)


def step_rows(flow: dict[str, Any], now: datetime | None = None) -> list[dict[str, Any]]:
    """What the step list shows of each step."""
    now = now or datetime.now(UTC)
    rows = []
    for st in flow.get("steps", []):
        op = str(st.get("operation") or "")
        output = st.get("output")
        rows.append(
            {
                **st,
                "partner": op.partition(".")[0],
                "label": label(st, str(flow.get("status"))),
                "took": took(st.get("started_at"), st.get("finished_at"), now),
                "comp_took": took(
                    st.get("compensation_started_at"), st.get("compensation_finished_at"), now
                ),
                "output_json": None if output is None else json.dumps(output, indent=2)[:5000],
            }
        )
    return rows


def render_steps(flow: dict[str, Any], names: dict[str, str]) -> str:
    """The step list (``flow_steps.html``): the page's and the stream's, the same markup."""
    template = TEMPLATES.env.get_template("flow_steps.html")
    return template.render(f=flow, rows=step_rows(flow), names=names)


def _event(kind: str, data: dict[str, Any]) -> bytes:
    return f"event: {kind}\ndata: {json.dumps(data)}\n\n".encode()


async def events(
    read: Callable[[], Awaitable[dict[str, Any] | None]],
    names: dict[str, str],
    first: dict[str, Any],
) -> AsyncIterator[bytes]:
    """The stream: a ``flow`` event per change (the status and the step list's HTML), then
    ``end`` once the flow is over (or ``gone`` when it can no longer be read)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STREAM_S
    yield b"retry: 2000\n\n"
    flow: dict[str, Any] | None = first
    last, delay = "", FIRST_POLL_S
    while flow is not None:
        seen = json.dumps(flow, sort_keys=True)
        if seen != last:
            status, html = str(flow.get("status")), render_steps(flow, names)
            yield _event("flow", {"status": status, "error": flow.get("error"), "html": html})
            last, delay = seen, FIRST_POLL_S
        else:
            delay = min(delay * 1.5, MAX_POLL_S)
        if flow.get("status") not in ACTIVE:
            yield _event("end", {"status": flow.get("status")})
            return
        if loop.time() + delay > deadline:
            return  # the browser reconnects
        await asyncio.sleep(delay)
        flow = await read()
    yield _event("gone", {})
