"""Outbox relay publishing: the relay's pipelined publish against nats-py's ``publish_async``.

Both publish the same rounds of outbox rows (the relay's batch size, and small rounds)
to the event stream on one real nats-server and wait for every PubAck; the figure is
the relay's rows per second as a ratio of ``JetStreamContext.publish_async`` (the
baseline, measured in the same run, rounds alternating between the two). The relay
keeps its own pipelining only while this ratio stays above 1 (see mesh/outbox.py).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Sequence
from typing import Any

import nats
from nats.js import JetStreamContext
from sqlalchemy import MetaData

from contracts import headers
from contracts.v1.identity import AuditData, AuditEvent
from mesh.localnats import local_nats
from mesh.outbox import Outbox, OutboxRelay, OutboxRow

Rows = Sequence[tuple[Any, str, str, str]]


class _NoDatabase:
    """The relay only registers a commit hook on its database; publishing needs none."""

    def on_commit(self, _hook: Any) -> None:
        pass


async def publish_async(js: JetStreamContext, rows: Rows, timeout: float) -> list[Any]:
    """The same contract as ``OutboxRelay.publish``, written on ``publish_async``."""
    pending: list[tuple[Any, asyncio.Future[Any]]] = []
    try:
        for key, event_id, subject, payload in rows:
            meta = {headers.MSG_ID: event_id}
            future = await js.publish_async(subject, payload.encode(), headers=meta)
            pending.append((key, future))
        await asyncio.wait([f for _, f in pending], timeout=timeout)
        return [k for k, f in pending if f.done() and not f.cancelled() and not f.exception()]
    finally:
        for _, future in pending:
            future.cancel()


def _rows(n: int) -> list[tuple[Any, str, str, str]]:
    out = []
    for i in range(n):
        row = OutboxRow.of(AuditEvent(ecosystem="bench", data=AuditData(action=f"a{i}")))
        out.append((i, row.event_id, row.subject, row.payload))
    return out


async def _rates(url: str, size: int, rounds: int) -> tuple[float, float]:
    nc = await nats.connect(url)
    try:
        relay = OutboxRelay(_NoDatabase(), Outbox(MetaData()), nc, "bench")  # type: ignore[arg-type]
        js = nc.jetstream()
        ways = {
            "relay": lambda rows: relay.publish(rows),
            "publish_async": lambda rows: publish_async(js, rows, 10.0),
        }
        rates: dict[str, list[float]] = {name: [] for name in ways}
        for r in range(rounds + 1):
            order = list(ways) if r % 2 == 0 else list(reversed(ways))
            for name in order:
                rows = _rows(size)
                started = time.perf_counter()
                acked = await ways[name](rows)
                elapsed = time.perf_counter() - started
                if len(acked) != size:
                    raise RuntimeError(f"{name}: {len(acked)} of {size} rows acknowledged")
                if r:  # the first round warms both up
                    rates[name].append(size / elapsed)
        await relay.close()
        return statistics.median(rates["relay"]), statistics.median(rates["publish_async"])
    finally:
        await nc.drain()


async def run(quick: bool) -> dict[str, Any]:
    rounds = 10 if quick else 60
    result: dict[str, Any] = {
        "baseline": "rows/s of JetStreamContext.publish_async (nats-py), same server, same rows",
        "rounds": rounds,
    }
    with local_nats() as url:
        for size in (200, 20):  # the relay's batch, and a light load's round
            relay, library = await _rates(url, size, rounds)
            result[f"relay_rows_per_s_{size}"] = round(relay)
            result[f"publish_async_rows_per_s_{size}"] = round(library)
            result[f"ratio_relay_to_publish_async_{size}"] = round(relay / library, 3)
    return result
