"""All operations and events of v1, assembled from the per-service modules.

Decode any event with :data:`EVENT_ADAPTER` (a discriminated union on ``type``), and the
events of any stream message with :func:`decode_events`.
"""

from __future__ import annotations

from typing import Annotated, Any, Union

from pydantic import Field, TypeAdapter

from contracts.batching import batchable as batchable  # the one definition (re-exported)
from contracts.envelope import EventBase
from contracts.policy import Operation
from contracts.v1 import (
    alliances,
    collaboration,
    connector,
    identity,
    matching,
    profile,
    profile_images,
    push,
    system,
)

_MODULES = (
    system,
    identity,
    alliances,
    profile,
    profile_images,
    collaboration,
    push,
    matching,
    connector,
)

OPERATIONS: tuple[Operation, ...] = tuple(op for m in _MODULES for op in m.OPERATIONS)
EVENT_TYPES: tuple[type[EventBase], ...] = tuple(
    e for m in _MODULES for e in getattr(m, "EVENTS", ())
)

Event = Annotated[Union[EVENT_TYPES], Field(discriminator="type")]  # type: ignore[valid-type]  # noqa: UP007
EVENT_ADAPTER: TypeAdapter[EventBase] = TypeAdapter(Event)
BATCH_ADAPTER: TypeAdapter[Any] = TypeAdapter(list[Event])

OPERATIONS_BY_SUBJECT: dict[str, Operation] = {op.subject: op for op in OPERATIONS}
EVENTS_BY_TYPE: dict[str, type[EventBase]] = {
    e.model_fields["type"].default: e for e in EVENT_TYPES
}


def operations_of(service: str) -> tuple[Operation, ...]:
    return tuple(op for op in OPERATIONS if op.service == service)


def decode_event(raw: bytes | str) -> EventBase:
    event: EventBase = EVENT_ADAPTER.validate_json(raw)
    return event


def decode_events(raw: bytes | str) -> list[EventBase]:
    """The events of one stream message: a structured-mode CloudEvent (a JSON object),
    or a CloudEvents JSON batch (an array) of a :attr:`~EventBase.BATCHABLE` type."""
    first = raw.lstrip()[:1]
    if first in (b"[", "["):
        events: list[EventBase] = BATCH_ADAPTER.validate_json(raw)
        return events
    return [EVENT_ADAPTER.validate_json(raw)]


def _check_unique() -> None:
    keys = {
        "name": [op.name for op in OPERATIONS],
        "route": [f"{op.method} {op.path}" for op in OPERATIONS],
        "subject": [op.subject for op in OPERATIONS],
    }
    for label, values in keys.items():
        dupes = {v for v in values if values.count(v) > 1}
        if dupes:
            raise RuntimeError(f"duplicate operation {label}: {dupes}")


_check_unique()
