"""Durable, idempotent JetStream consumers that heal themselves.

Each event is handled in one database transaction together with an inbox row
keyed by (consumer, event id): a redelivered or replayed event finds its row and
changes nothing. The message is acknowledged only after that commit.

A message may carry a CloudEvents batch (see :func:`mesh.outbox.batched`): its events
are handled in order, each in its own transaction with its own inbox row. One that
fails for now has the whole message redelivered later, and the events already handled
find their inbox rows then.

Failures, and what becomes of them:

- **Pulling** fails (a stream leader change, a 503 from JetStream, a reconnect, the
  consumer deleted): :meth:`EventConsumer.run` marks itself unhealthy (readiness fails,
  ``pm_consumer_up`` 0), backs off, re-creates the consumer and its subscription and goes
  on, for as long as it takes. It only returns after :meth:`~EventConsumer.stop`.
- **For now** (the handler raised anything but a contract error: the database is down, a
  peer does not answer): the message is delivered again on the :class:`RetrySchedule`,
  whose delays span hours, so an outage of minutes to hours loses nothing.
- **For good** (the message does not decode, its type is unknown, the handler raised
  ``MeshError``), or still failing on the schedule's last delivery: the event goes to
  the dead-letter stream with the error (:mod:`mesh.deadletters`), at once, and the
  stream moves on. ``partnermesh dead-letters replay`` hands it back to this consumer
  (:meth:`EventConsumer.serve_replays`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from pydantic import ValidationError
from sqlalchemy import Column, DateTime, MetaData, String, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import headers
from contracts.envelope import EventBase
from contracts.subjects import (
    DEAD_LETTER_STREAM,
    EVENT_STREAM,
    dead_letter_replay_subject,
    dead_letter_subject,
)
from mesh import metrics
from mesh.backoff import Backoff
from mesh.consumer_batch import handle_together
from mesh.db import Database
from mesh.db import unavailable as db_unavailable
from mesh.deadletters import one_line
from mesh.errors import MeshError
from mesh.outbox import stop_if_cancelled
from mesh.settings import DEFAULT_MAX_DELIVER, DEFAULT_RETRY_DELAYS
from mesh.startup import database_answers

log = logging.getLogger(__name__)

EventHandler = Callable[[AsyncSession, EventBase], Awaitable[None]]


def decode_events(raw: bytes) -> list[EventBase]:
    """The events of one stream message (:func:`contracts.registry.decode_events`). The
    registry, every service's contracts, loads with the first consumer
    (:class:`EventConsumer`), not with this module: a process that only needs the inbox
    table (:mod:`mesh.migrate` does) never loads it."""
    from contracts.registry import decode_events as decode

    return decode(raw)


# Delivery n+1 comes DEFAULT_RETRY_DELAYS[n-1] seconds after delivery n failed for now (the
# last delay repeats): about an hour of growing delays, then hourly for a day.


@dataclass(frozen=True)
class RetrySchedule:
    """When an event that failed for now is delivered again, and how often at most.

    ``delays[n-1]`` seconds after its n-th delivery failed (the last one repeats), until
    ``max_deliver`` deliveries; then it is a dead letter. The consumer's JetStream
    ``backoff`` list is the same schedule, floored at ``ack_wait``: it applies when a
    delivery is never answered (a process killed mid-event), and ``ack_wait`` is how long
    a handler may take before the event goes to another replica."""

    delays: tuple[float, ...] = tuple(float(d) for d in DEFAULT_RETRY_DELAYS)
    max_deliver: int = DEFAULT_MAX_DELIVER
    ack_wait: float = 30.0

    def __post_init__(self) -> None:
        if not self.delays or self.max_deliver <= len(self.delays):
            raise ValueError("a retry schedule needs delays and max_deliver > len(delays)")

    def delay(self, delivered: int) -> float:
        return float(self.delays[min(max(delivered, 1), len(self.delays)) - 1])

    def backoff(self) -> list[float]:
        return [max(float(d), self.ack_wait) for d in self.delays]

    def total(self) -> float:
        """Seconds from the first delivery to the last."""
        return sum(self.delay(n) for n in range(1, self.max_deliver))


def inbox_table(metadata: MetaData) -> Table:
    if "mesh_inbox" in metadata.tables:
        return metadata.tables["mesh_inbox"]
    return Table(
        "mesh_inbox",
        metadata,
        Column("consumer", String(100), primary_key=True),
        Column("event_id", String(64), primary_key=True),
        Column("processed_at", DateTime(timezone=True), nullable=False),
    )


class Inbox:
    def __init__(self, metadata: MetaData) -> None:
        self.table = inbox_table(metadata)

    async def claim(self, session: AsyncSession, consumer: str, event_id: str) -> bool:
        """Record the event as processed by ``consumer``; False if it already was.

        One statement (``INSERT … ON CONFLICT DO NOTHING``): a row already there, or one
        a concurrent replica is committing (the insert waits for it), inserts nothing."""
        dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        stmt = dialect.insert(self.table).values(
            consumer=consumer, event_id=event_id, processed_at=datetime.now(UTC)
        )
        result = await session.execute(stmt.on_conflict_do_nothing())
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]


# While the database is away, how long at most between two tries of the event in hand.
HOLD_PROBE_MAX_S = 5.0


class EventConsumer:
    """A durable pull consumer that hands each event to ``handler`` exactly once in effect,
    and keeps pulling through whatever happens to the stream (see the module)."""

    def __init__(
        self,
        js: JetStreamContext,
        db: Database,
        inbox: Inbox,
        durable: str,
        filter_subjects: list[str],
        handler: EventHandler,
        batch: int = 64,
        *,
        process: str = "mesh",
        schedule: RetrySchedule | None = None,
        fetch_timeout: float = 1.0,
        check_interval: float = 5.0,
        backoff: Backoff | None = None,
        together: bool = False,
    ) -> None:
        self.js = js
        self.db = db
        self.inbox = inbox
        self.durable = durable
        self.filter_subjects = filter_subjects
        self.handler = handler
        self.batch = batch
        self.process = process
        self.schedule = schedule or RetrySchedule()
        self.fetch_timeout = fetch_timeout
        self.check_interval = check_interval
        self.backoff = backoff or Backoff(0.2, 10.0)
        # Each fetched batch in one transaction first (mesh.consumer_batch)
        self.together = together
        self.healthy = False  # pulled or reached its consumer lately, and no error since
        self.last_error = ""
        self._last_check = 0.0
        self.attempted = asyncio.Event()  # set once the first subscribe succeeded or failed
        import contracts.registry  # noqa: F401  (loaded now, not on the first message)

        self._stopping = False
        self._in_hand = False

    def stop(self) -> None:
        """Take no new event; :meth:`run` returns once the event in hand is done.

        Cancelling mid-event would cut its database transaction short; while waiting
        for messages there is nothing to finish (see :attr:`busy`).
        """
        self._stopping = True

    @property
    def stopping(self) -> bool:
        return self._stopping

    @property
    def busy(self) -> bool:
        """Handling an event now (stop by waiting), not waiting for one (stop by cancelling)."""
        return self._in_hand

    def config(self) -> ConsumerConfig:
        return ConsumerConfig(
            durable_name=self.durable,
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self.schedule.ack_wait,
            max_deliver=self.schedule.max_deliver,
            backoff=self.schedule.backoff(),
            filter_subjects=self.filter_subjects,
        )

    async def run(self) -> None:
        """Pull and handle until :meth:`stop` (or cancellation); never ends on an error."""
        sub: Any = None
        try:
            while not self._stopping:
                try:
                    if sub is None:
                        sub = await self._subscribe()
                        self.attempted.set()
                    msgs = await self._fetch(sub)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    self._failed(exc)
                    self.attempted.set()
                    await _drop(sub)
                    sub = None
                    await self.backoff.sleep()
                    continue
                self.backoff.reset()
                await self._handle_batch(msgs)
                stop_if_cancelled()
        finally:
            self._up(False)
            await _drop(sub)

    async def _subscribe(self) -> Any:
        # Creates the durable, or updates it to this config (e.g. a new schedule); the
        # consumer has as many replicas as its stream.
        await self.js.add_consumer(EVENT_STREAM, self.config())
        sub = await self.js.pull_subscribe_bind(durable=self.durable, stream=EVENT_STREAM)
        await self._check(sub)
        return sub

    async def _fetch(self, sub: Any) -> list[Msg]:
        try:
            msgs: list[Msg] = await sub.fetch(self.batch, timeout=self.fetch_timeout)
        except (NatsTimeoutError, TimeoutError):
            stop_if_cancelled()
            msgs = []
        if msgs:
            self._ok()
        # An empty fetch may mean nothing to do, or a consumer gone or without a leader:
        # asking for its state tells them apart (and keeps the lag metrics fresh).
        if time.monotonic() - self._last_check >= self.check_interval:
            await self._check(sub)
        return msgs

    async def _check(self, sub: Any) -> None:
        self._last_check = time.monotonic()
        info = await sub.consumer_info()
        metrics.consumer_pending.labels(self.durable).set(info.num_pending or 0)
        metrics.consumer_ack_pending.labels(self.durable).set(info.num_ack_pending or 0)
        self._ok()

    def _ok(self) -> None:
        if not self.healthy:
            if self.last_error:
                log.info("consumer pulling again", extra={"consumer": self.durable})
            self.last_error = ""
            self._up(True)

    def _failed(self, exc: Exception) -> None:
        error = f"{exc.__class__.__name__}: {exc}"
        if self.healthy or error != self.last_error:
            log.warning(
                "consumer cannot pull; retrying", extra={"consumer": self.durable, "error": error}
            )
        self.last_error = error
        self._up(False)

    def _up(self, up: bool) -> None:
        self.healthy = up
        metrics.consumer_up.labels(self.durable).set(1 if up else 0)

    async def _handle_batch(self, msgs: list[Msg]) -> None:
        if self.together and len(msgs) > 1 and not self._stopping and await self._together(msgs):
            return
        for i, msg in enumerate(msgs):
            if self._stopping:  # hand the rest back for another replica, now
                for left in msgs[i:]:
                    with contextlib.suppress(Exception):
                        await left.nak()
                return
            self._in_hand = True
            try:
                later = msgs[i + 1 :]
                await self._process(msg, later)
                if len(later) < len(msgs) - i - 1:  # handed back while the database was away
                    return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # e.g. the ack or the dead letter could not be sent
                log.warning(
                    "event left for redelivery",
                    extra={"consumer": self.durable, "error": f"{exc.__class__.__name__}: {exc}"},
                )
            finally:
                self._in_hand = False

    async def _together(self, msgs: list[Msg]) -> bool:
        """Handle first deliveries in one transaction (:mod:`mesh.consumer_batch`) and ack
        them; False, with nothing committed, when the batch is to go one by one."""
        if any((m.metadata.num_delivered or 1) > 1 for m in msgs):
            return False
        try:
            events = [e for m in msgs for e in decode_events(m.data)]
        except ValidationError:
            return False
        self._in_hand = True
        try:
            fresh = await handle_together(
                self.db, self.inbox.claim, self.durable, self.handler, events
            )
            if fresh is None:
                return False
            for new in fresh:
                metrics.events_consumed.labels(self.durable, "ok" if new else "duplicate").inc()
            for m in msgs:  # one not acknowledged comes back and finds its inbox row
                with contextlib.suppress(Exception):
                    await m.ack()
            return True
        finally:
            self._in_hand = False

    async def _process(self, msg: Msg, rest: list[Msg] | None = None) -> None:
        """Handle ``msg``; should the database be away, ``rest`` (the batch's other
        messages) is handed back for later and emptied (see :meth:`_handle_holding`)."""
        delivered = msg.metadata.num_delivered or 1
        if delivered > 1:
            metrics.events_redelivered.labels(self.durable).inc()
        try:
            events = decode_events(msg.data)
        except ValidationError as exc:
            log.error("undecodable event", extra={"consumer": self.durable})
            metrics.events_consumed.labels(self.durable, "poison").inc()
            await self._dead_letter(msg, "undecodable", str(exc))
            await msg.term()
            return
        rejected: list[tuple[EventBase, str]] = []
        for event in events:
            outcome, error = await self._handle_holding(msg, event, rest or [])
            metrics.events_consumed.labels(self.durable, outcome).inc()
            if outcome == "unavailable":  # stopping while the database is away
                await msg.nak()
                return
            if outcome == "retry":
                if delivered >= self.schedule.max_deliver:
                    await self._dead_letter(msg, "exhausted", error)
                    await msg.term()
                else:
                    await msg.nak(delay=self.schedule.delay(delivered))
                return
            if outcome == "rejected":
                rejected.append((event, error))
        for event, error in rejected:
            await self._dead_letter(msg, "rejected", error, event)
        await msg.ack()

    async def _database_away(self, exc: Exception) -> bool:
        """Whether the handler failed because the database cannot be reached (rather than,
        say, a peer not answering): an error of that kind, and the database not answering
        a ping either (asyncpg's refused connects surface as plain ``OSError``)."""
        if not (db_unavailable(exc) or isinstance(exc, OSError)):
            return False
        return not await database_answers(self.db)

    async def _hand_back(self, msgs: list[Msg]) -> None:
        """Give messages back to JetStream for later, each after its schedule's delay."""
        for m in msgs:
            with contextlib.suppress(Exception):
                await m.nak(delay=self.schedule.delay(m.metadata.num_delivered or 1))
        msgs.clear()

    async def _handle(self, event: EventBase) -> tuple[str, str]:
        """Handle one event once in effect: (``ok`` | ``duplicate`` | ``rejected``, a
        permanent failure | ``retry``, to be delivered again; the error)."""
        try:
            async with self.db.transaction() as session:
                fresh = await self.inbox.claim(session, self.durable, event.id)
                if fresh:
                    await self.handler(session, event)
        except MeshError as exc:
            log.warning("event rejected", extra={"event_id": event.id, "error": str(exc)})
            return "rejected", f"MeshError {exc}"
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if await self._database_away(exc):
                return "unavailable", f"{exc.__class__.__name__}: {exc}"
            log.exception("event handler failed; will retry", extra={"event_id": event.id})
            return "retry", f"{exc.__class__.__name__}: {exc}"
        return ("ok" if fresh else "duplicate"), ""

    async def _handle_holding(self, msg: Msg, event: EventBase, rest: list[Msg]) -> tuple[str, str]:
        """:meth:`_handle`, holding on to ``msg`` for as long as the database cannot be
        reached: the message stays in hand (``in_progress`` keeps JetStream from giving
        it to anyone else, and counts no delivery), the handler is tried again as soon as
        the database answers. An outage of any length costs no delivery and no dead letter,
        and the backlog moves the moment the database is back, not after a retry delay.
        Stopping hands the message back at once (``unavailable``)."""
        wait = Backoff(0.2, HOLD_PROBE_MAX_S)
        while True:
            outcome, error = await self._handle(event)
            if outcome != "unavailable":
                if wait.attempt:
                    log.info("database back; event handled", extra={"consumer": self.durable})
                    self._ok()
                return outcome, error
            if not wait.attempt:
                log.warning(
                    "database unavailable; holding the event until it answers",
                    extra={"consumer": self.durable, "event_id": event.id, "error": error},
                )
                self._failed(RuntimeError(f"database unavailable: {error}"))
                await self._hand_back(rest)
            if self._stopping:
                return outcome, error
            await msg.in_progress()
            # Well inside the ack wait, so JetStream never takes the held message back.
            await asyncio.sleep(min(wait.next(), self.schedule.ack_wait / 3))

    async def _dead_letter(
        self, msg: Msg, reason: str, error: str, event: EventBase | None = None
    ) -> None:
        """Put ``event`` (else the whole message) on the dead-letter stream, saying why;
        raises when it could not (the message is then delivered again)."""
        meta = msg.metadata
        await self._publish_dead_letter(
            event.model_dump_json().encode() if event is not None else msg.data,
            msg.subject,
            meta.sequence.stream,
            meta.num_delivered or 1,
            reason,
            error,
            event_id=event.id if event is not None else None,
            content_type=(msg.headers or {}).get(headers.CONTENT_TYPE) if event is None else None,
        )

    async def _publish_dead_letter(
        self,
        payload: bytes,
        subject: str,
        seq: int,
        deliveries: int,
        reason: str,
        error: str,
        event_id: str | None = None,
        content_type: str | None = None,
    ) -> None:
        dl_headers = {
            headers.MSG_ID: f"{self.durable}.{seq}" + (f".{event_id}" if event_id else ""),
            headers.DLQ_REASON: reason,
            headers.DLQ_ERROR: one_line(error) or reason,
            headers.DLQ_PROCESS: self.process,
            headers.DLQ_CONSUMER: self.durable,
            headers.DLQ_SUBJECT: subject,
            headers.DLQ_STREAM: EVENT_STREAM,
            headers.DLQ_SEQUENCE: str(seq),
            headers.DLQ_DELIVERIES: str(deliveries),
        }
        if event_id:
            dl_headers[headers.DLQ_EVENT_ID] = event_id
        if content_type:
            dl_headers[headers.CONTENT_TYPE] = content_type
        ack = await self.js.publish(
            dead_letter_subject(self.process, self.durable),
            payload,
            stream=DEAD_LETTER_STREAM,
            headers=dl_headers,
        )
        if ack.duplicate:
            return  # reported before (a redelivery, or the other path)
        metrics.dead_letters.labels(self.durable, reason).inc()
        log.error(
            "event put on the dead-letter stream",
            extra={"consumer": self.durable, "reason": reason, "error": one_line(error)},
        )

    async def serve_replays(self, nc: Client) -> Subscription:
        """Answer ``partnermesh dead-letters replay`` for this consumer (one replica of the
        queue group takes each request): run the dead letter through :meth:`_handle`."""

        async def on_request(msg: Msg) -> None:
            await msg.respond(json.dumps(await self.replay(msg.data)).encode())

        return await nc.subscribe(
            dead_letter_replay_subject(self.process, self.durable),
            queue=self.durable,
            cb=on_request,
        )

    async def watch_exhausted(self, nc: Client) -> Subscription:
        """Dead-letter what ran out of deliveries without this consumer seeing its last one
        fail (the process died or hung mid-event): JetStream's max-deliveries advisory
        names the stream sequence; one replica of the queue group copies that message to
        the dead-letter stream (same message id as the in-process path: stored once)."""

        async def on_advisory(msg: Msg) -> None:
            try:
                advisory = json.loads(msg.data)
                seq = int(advisory["stream_seq"])
                original = await self.js.get_msg(EVENT_STREAM, seq)
                await self._publish_dead_letter(
                    original.data or b"",
                    original.subject or "",
                    seq,
                    int(advisory.get("deliveries", self.schedule.max_deliver)),
                    "exhausted",
                    "no delivery was acknowledged (the handler died or hung each time)",
                    content_type=(original.headers or {}).get(headers.CONTENT_TYPE),
                )
            except Exception as exc:
                log.error(
                    "could not dead-letter an exhausted event",
                    extra={"consumer": self.durable, "error": f"{exc.__class__.__name__}: {exc}"},
                )

        return await nc.subscribe(
            f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{EVENT_STREAM}.{self.durable}",
            queue=self.durable,
            cb=on_advisory,
        )

    async def replay(self, data: bytes) -> dict[str, str]:
        """Handle a dead letter's body again; ``outcome`` is ``ok`` (or ``duplicate``) when
        every event in it is now handled."""
        try:
            events = decode_events(data)
        except ValidationError as exc:
            return {"outcome": "undecodable", "error": one_line(str(exc))}
        outcomes = []
        for event in events:
            outcome, error = await self._handle(event)
            metrics.events_consumed.labels(self.durable, f"replay-{outcome}").inc()
            if outcome in ("rejected", "retry"):
                return {"outcome": outcome, "error": one_line(error), "event_id": event.id}
            outcomes.append(outcome)
        outcome = "duplicate" if all(o == "duplicate" for o in outcomes) else "ok"
        log.info("dead letter replayed", extra={"consumer": self.durable, "outcome": outcome})
        return {"outcome": outcome, "error": ""}


async def _drop(sub: Any) -> None:
    """Let go of a subscription: a fetch cut short leaves messages queued on it, and a
    connection drain would wait for them forever."""
    if sub is not None:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()
