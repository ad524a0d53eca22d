"""Contracts of the matching service: operations (with their policies) and events."""

from __future__ import annotations

from contracts.envelope import EventBase
from contracts.policy import Operation

OPERATIONS: tuple[Operation, ...] = ()
EVENTS: tuple[type[EventBase], ...] = ()
