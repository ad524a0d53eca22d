"""All operations and events of v1, assembled from the per-service modules.

Decode any event with :data:`EVENT_ADAPTER` (a discriminated union on ``type``).
"""

from __future__ import annotations

from typing import Annotated, Any, Union

from pydantic import Field, TypeAdapter

from contracts.envelope import EventBase
from contracts.policy import Operation
from contracts.v1 import collaboration, connector, identity, matching, profile, system

_MODULES = (system, identity, profile, collaboration, matching, connector)

OPERATIONS: tuple[Operation, ...] = tuple(op for m in _MODULES for op in m.OPERATIONS)
EVENT_TYPES: tuple[type[EventBase], ...] = tuple(
    e for m in _MODULES for e in getattr(m, "EVENTS", ())
)

Event = Annotated[Union[EVENT_TYPES], Field(discriminator="type")]  # type: ignore[valid-type]  # noqa: UP007
EVENT_ADAPTER: TypeAdapter[Any] = TypeAdapter(Event)

OPERATIONS_BY_SUBJECT: dict[str, Operation] = {op.subject: op for op in OPERATIONS}
EVENTS_BY_TYPE: dict[str, type[EventBase]] = {
    e.model_fields["type"].default: e for e in EVENT_TYPES
}


def operations_of(service: str) -> tuple[Operation, ...]:
    return tuple(op for op in OPERATIONS if op.service == service)


def decode_event(raw: bytes | str) -> EventBase:
    return EVENT_ADAPTER.validate_json(raw)


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
