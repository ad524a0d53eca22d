"""The one datetime type of the contracts: a UTC instant, written as RFC 3339 with its offset.

SQLite hands datetimes back without a zone (PostgreSQL's ``timestamp`` columns too), and
every process stores UTC. A naive value is therefore read as UTC, an aware one converted
to UTC, so every reply and event says ``2026-01-02T03:04:05.123456Z`` — what the OpenAPI
and AsyncAPI ``date-time`` format promises — whatever the database handed back.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator


def as_utc(value: datetime) -> datetime:
    """``value`` as an aware UTC datetime; a naive one is taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


Timestamp = Annotated[datetime, AfterValidator(as_utc)]
"""A datetime field of a contract model: always UTC-aware, so always serialised with ``Z``."""
