"""The event envelope: CloudEvents 1.0 attribute names plus ecosystem and partner."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from contracts.ids import uuid7_hex
from contracts.timestamps import Timestamp


def _now() -> datetime:
    return datetime.now(UTC)


class EventBase(BaseModel):
    """Base of every event. ``id`` is the idempotency key consumers de-duplicate on.

    Subclasses fix ``type`` with a ``Literal`` and give ``data`` a model.
    """

    model_config = ConfigDict(extra="forbid")

    specversion: str = "1.0"
    id: str = Field(default_factory=uuid7_hex)
    type: str
    source: str = Field(description="The emitting service, e.g. /services/collaboration")
    time: Timestamp = Field(default_factory=_now)
    subject: str | None = Field(default=None, description="The entity the event is about")
    datacontenttype: str = "application/json"
    ecosystem: str
    partner: str | None = None
    data: Any

    SOURCE: ClassVar[str] = ""
    # May the outbox join events of this type on one subject into one message, a
    # CloudEvents JSON batch (``application/cloudevents-batch+json``)? For high-volume
    # types whose consumers take them in bulk (audit); every event keeps its own ``id``.
    BATCHABLE: ClassVar[bool] = False
