"""Dead letters: what a consumer cannot handle for good, kept for inspection and replay.

A consumer puts an event on ``pm.v1.dlq.<process>.<durable>`` (stream
``PM_DEAD_LETTERS``) when it is rejected for good (it does not validate, its type is
unknown, the handler raised a contract error ``MeshError``) or when it failed for now on
its last allowed delivery. The body is the original message; headers say why
(:mod:`contracts.headers` ``DLQ_*``). The message id is the consumer and the original
stream sequence (and event), so the same failure reported twice is stored once.

Replay hands a dead letter back to the consumer that gave up on it: a request on
``pm.v1.replay.<process>.<durable>`` that a running replica of that process answers by
running the event through the consumer's own inbox-idempotent handler path, in one
transaction, and replying with the outcome. Nothing is republished on the event stream:
that would reach every other consumer of the subject too, and the stream's de-duplication
window would silently drop a republish under the same message id.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import RawStreamMsg
from nats.js.errors import NotFoundError

from contracts import headers
from contracts.subjects import DEAD_LETTER_STREAM, dead_letter_replay_subject

MAX_ERROR_CHARS = 2000


@dataclass
class DeadLetter:
    """One dead letter as stored (``seq``: its sequence in ``PM_DEAD_LETTERS``)."""

    seq: int
    subject: str
    data: bytes
    headers: dict[str, str]
    time: str = ""

    @property
    def process(self) -> str:
        return self.headers.get(headers.DLQ_PROCESS, "")

    @property
    def consumer(self) -> str:
        return self.headers.get(headers.DLQ_CONSUMER, "")

    @property
    def reason(self) -> str:
        return self.headers.get(headers.DLQ_REASON, "")

    @property
    def error(self) -> str:
        return self.headers.get(headers.DLQ_ERROR, "")

    def summary(self) -> dict[str, object]:
        return {
            "seq": self.seq,
            "time": self.time,
            "process": self.process,
            "consumer": self.consumer,
            "reason": self.reason,
            "error": self.error,
            "event_id": self.headers.get(headers.DLQ_EVENT_ID, ""),
            "original_subject": self.headers.get(headers.DLQ_SUBJECT, ""),
            "original_sequence": self.headers.get(headers.DLQ_SEQUENCE, ""),
            "deliveries": self.headers.get(headers.DLQ_DELIVERIES, ""),
        }


def one_line(text: str) -> str:
    """A header value: one line, bounded."""
    return " ".join(text.split())[:MAX_ERROR_CHARS]


async def get(js: JetStreamContext, seq: int) -> DeadLetter | None:
    try:
        return _letter(await js.get_msg(DEAD_LETTER_STREAM, seq))
    except NotFoundError:
        return None


def _letter(raw: RawStreamMsg) -> DeadLetter:
    return DeadLetter(
        seq=raw.seq or 0,
        subject=raw.subject or "",
        data=raw.data or b"",
        headers=dict(raw.headers or {}),
        time=raw.time.isoformat() if raw.time else "",
    )


async def listing(js: JetStreamContext, subject: str | None = None) -> AsyncIterator[DeadLetter]:
    """Every dead letter still kept, oldest first (only ``subject``'s when given)."""
    info = await js.stream_info(DEAD_LETTER_STREAM)
    seq = info.state.first_seq or 1
    while seq <= (info.state.last_seq or 0):
        try:
            raw = await js.get_msg(DEAD_LETTER_STREAM, seq, subject=subject or ">", next=True)
        except NotFoundError:
            return
        yield _letter(raw)
        seq = (raw.seq or seq) + 1


async def replay(nc: Client, letter: DeadLetter, timeout: float = 30.0) -> dict[str, str]:
    """Hand ``letter`` back to its consumer (a running replica of its process); returns its
    reply: ``outcome`` (``ok``, ``duplicate``: handled before; ``rejected``, ``retry``,
    ``undecodable``: still failing) and ``error``."""
    meta = {}
    if headers.CONTENT_TYPE in letter.headers:
        meta[headers.CONTENT_TYPE] = letter.headers[headers.CONTENT_TYPE]
    reply = await nc.request(
        dead_letter_replay_subject(letter.process, letter.consumer),
        letter.data,
        timeout=timeout,
        headers=meta or None,
    )
    return dict(json.loads(reply.data))
