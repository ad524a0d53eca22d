"""Which event subjects may be joined into one batch message (:attr:`EventBase.BATCHABLE`).

Answered from the contracts of the subject's source (``contracts.v1.<source>``) without
loading every service's contracts: :mod:`contracts.registry` imports them all (about 6 MiB
of models), which a process that only publishes its own events never needs. An event not
found in a module of that name is looked up in the registry, so the answer is the
registry's for every subject.
"""

from __future__ import annotations

import importlib
from functools import lru_cache

from contracts.envelope import EventBase
from contracts.subjects import EVENT_PREFIX, PREFIX


@lru_cache(maxsize=4096)
def batchable(subject: str) -> bool:
    """Whether the events on an event subject (``pm.v1.evt.<eco>.<source>.<name>``) may
    be joined into one batch message."""
    parts = subject.removeprefix(EVENT_PREFIX + ".").split(".")
    if not subject.startswith(EVENT_PREFIX + ".") or len(parts) != 3:
        return False
    event_type = f"{PREFIX}.{parts[1]}.{parts[2]}"
    event = _in_source(parts[1], event_type)
    if event is None:
        from contracts.registry import EVENTS_BY_TYPE  # every service's contracts

        event = EVENTS_BY_TYPE.get(event_type)
    return event is not None and event.BATCHABLE


def _in_source(source: str, event_type: str) -> type[EventBase] | None:
    """The event class of ``event_type`` in ``contracts.v1.<source>``, if it is there."""
    if not source.isidentifier() or source.startswith("_"):
        return None
    try:
        module = importlib.import_module(f"contracts.v1.{source}")
    except ImportError:
        return None
    events: tuple[type[EventBase], ...] = getattr(module, "EVENTS", ())
    for event in events:
        if event.model_fields["type"].default == event_type:
            return event
    return None
