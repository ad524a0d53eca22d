"""NATS subject scheme.

Request/reply: ``pm.v1.<service>.<operation>`` served by the queue group
``<service>``. Events: ``pm.v1.evt.<eco>.<source>.<name>`` in the JetStream
stream :data:`EVENT_STREAM`.
"""

from __future__ import annotations

PREFIX = "pm.v1"
EVENT_PREFIX = f"{PREFIX}.evt"
EVENT_STREAM = "PM_EVENTS"
EVENT_STREAM_SUBJECTS = [f"{EVENT_PREFIX}.>"]


def request_subject(service: str, operation: str) -> str:
    return f"{PREFIX}.{service}.{operation}"


def event_subject(eco: str, event_type: str) -> str:
    """The subject of an event type in an ecosystem.

    ``pm.v1.collaboration.post_created`` in ``acme`` → ``pm.v1.evt.acme.collaboration.post_created``
    """
    source_and_name = event_type.removeprefix(PREFIX + ".")
    return f"{EVENT_PREFIX}.{eco}.{source_and_name}"


def event_filter(eco: str = "*", source: str = "*", name: str = "*") -> str:
    return f"{EVENT_PREFIX}.{eco}.{source}.{name}"


# Dead letters: events a consumer cannot handle for good (an event that does not validate,
# an unknown type, a contract error), published by the consuming process with the error,
# kept in their own stream for inspection and replay.
DEAD_LETTER_PREFIX = f"{PREFIX}.dlq"
DEAD_LETTER_STREAM = "PM_DEAD_LETTERS"
DEAD_LETTER_STREAM_SUBJECTS = [f"{DEAD_LETTER_PREFIX}.>"]


def dead_letter_subject(process: str, durable: str) -> str:
    """Where ``process``'s consumer ``durable`` puts what it cannot handle for good:
    ``pm.v1.dlq.<process>.<durable>``."""
    return f"{DEAD_LETTER_PREFIX}.{process}.{durable}"
