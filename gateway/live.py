"""Live events for open streams: ephemeral consumers of each gateway process (one per
event type), handing each event to the open streams of its recipient only.

Every gateway replica needs every notification event (a person's page may be open on any
of them), so this is not a durable consumer shared by a queue group but an ephemeral
consumer of its own, like the revocation feed (``contracts.bus.LIVE_READERS``). It starts
at new events: what was recorded before a stream opened reaches it through its catch-up
(``Last-Event-ID``, see :mod:`gateway.livestream`), never from here. Should the consumer
fail (a reconnect, the stream's leader lost), a new one starts after the last event seen,
for as long as it takes.

A stream registers for ``(ecosystem, subject)`` taken from its verified token; an event is
routed by its own ``ecosystem`` and ``data.recipient``. Nothing else decides who hears what.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from typing import Any

from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy
from pydantic import ValidationError

from contracts.bus import event_subjects, event_type
from contracts.envelope import EventBase
from contracts.registry import decode_event
from contracts.subjects import EVENT_STREAM
from mesh.backoff import Backoff
from mesh.outbox import stop_if_cancelled
from mesh.streams import ephemeral_reader

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (ecosystem, subject id)
QUEUE_SIZE = 256  # events a slow stream may lag behind before it is closed


class LiveFeed:
    """Events of ``events`` types, fanned out to the queues of open streams by recipient."""

    def __init__(
        self,
        js: JetStreamContext,
        events: Iterable[type[EventBase]],
        max_streams: int,
        fetch_timeout: float = 5.0,
    ) -> None:
        self.js = js
        self.filters = [event_subjects(event_type(e)) for e in events]
        self.max_streams = max_streams
        self.fetch_timeout = fetch_timeout
        self.streams: dict[Key, set[asyncio.Queue[EventBase | None]]] = {}
        self.open = 0
        self.healthy = False
        self._down: set[str] = set(self.filters)
        self._next_seq: dict[str, int] = {}  # per filter: the stream sequence to resume at
        self._tasks: list[asyncio.Task[None]] = []

    # ---------------------------------------------------------------- streams

    def join(self, key: Key) -> asyncio.Queue[EventBase | None] | None:
        """A queue for a new stream of ``key``; None when this process holds its maximum."""
        if self.open >= self.max_streams:
            return None
        queue: asyncio.Queue[EventBase | None] = asyncio.Queue(QUEUE_SIZE)
        self.streams.setdefault(key, set()).add(queue)
        self.open += 1
        return queue

    def leave(self, key: Key, queue: asyncio.Queue[EventBase | None]) -> None:
        queues = self.streams.get(key)
        if queues is not None and queue in queues:
            queues.discard(queue)
            self.open -= 1
            if not queues:
                del self.streams[key]

    def deliver(self, event: EventBase) -> None:
        recipient = getattr(event.data, "recipient", None)
        if not isinstance(recipient, str):
            return
        for queue in list(self.streams.get((event.ecosystem, recipient), ())):
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:  # too slow: it closes, and catches up when it comes back
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
                queue.put_nowait(None)

    # ---------------------------------------------------------------- the consumer

    async def start(self) -> None:
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._run(f), name=f"live-feed-{i}")
                for i, f in enumerate(self.filters)
            ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        for queues in self.streams.values():
            for queue in queues:
                with contextlib.suppress(asyncio.QueueFull):
                    queue.put_nowait(None)

    async def _run(self, subject: str) -> None:
        """One ephemeral consumer per event type: the grants allow a consumer one filter,
        named in its create request (``contracts.bus.ephemeral_filters``)."""
        backoff = Backoff(0.2, 5.0)
        while True:
            sub: Any = None
            name = ""
            try:
                sub, name = await self._subscribe(subject)
                self._up(subject, True)
                backoff.reset()
                while True:
                    await self._pull(sub, subject)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._up(subject, False)
                log.warning("live feed cannot pull; retrying", extra={"error": repr(exc)})
            finally:
                await self._drop(sub, name)
            await backoff.sleep()

    def _up(self, subject: str, up: bool) -> None:
        if up:
            self._down.discard(subject)
        else:
            self._down.add(subject)
        self.healthy = not self._down

    async def _subscribe(self, subject: str) -> tuple[Any, str]:
        seq = self._next_seq.get(subject, 0)
        start: dict[str, Any] = (
            {"deliver_policy": DeliverPolicy.BY_START_SEQUENCE, "opt_start_seq": seq}
            if seq
            else {"deliver_policy": DeliverPolicy.NEW}
        )
        return await ephemeral_reader(
            self.js,
            subject,
            "live",
            inactive_threshold=max(30.0, 3 * self.fetch_timeout),
            **start,
        )

    async def _pull(self, sub: Any, subject: str) -> None:
        try:
            msgs = await sub.fetch(64, timeout=self.fetch_timeout)
        except (NatsTimeoutError, TimeoutError):
            stop_if_cancelled()
            await sub.consumer_info()  # an idle stream, or a consumer gone? this tells
            return
        for msg in msgs:
            self._next_seq[subject] = msg.metadata.sequence.stream + 1
            try:
                event = decode_event(msg.data)
            except ValidationError:
                log.error("undecodable live event dropped")
                continue
            self.deliver(event)

    async def _drop(self, sub: Any, name: str) -> None:
        if sub is not None:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        if name:  # else the server drops it anyway once inactive
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.js.delete_consumer(EVENT_STREAM, name), 1)
