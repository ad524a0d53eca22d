"""Event ids: RFC 9562 version-7 UUIDs, unique, ordered by the millisecond they were made."""

from __future__ import annotations

import time
import uuid

from contracts.envelope import EventBase
from contracts.ids import uuid7_hex


def test_is_a_version_7_uuid_of_the_rfc_variant() -> None:
    for _ in range(200):
        value = uuid.UUID(hex=uuid7_hex())
        assert value.version == 7
        assert value.variant == uuid.RFC_4122


def test_carries_the_unix_milliseconds_it_was_made_at() -> None:
    before = time.time_ns() // 1_000_000
    made = int(uuid7_hex()[:12], 16)
    after = time.time_ns() // 1_000_000
    assert before <= made <= after


def test_ids_of_later_milliseconds_sort_after_earlier_ones() -> None:
    first = uuid7_hex()
    time.sleep(0.002)
    assert uuid7_hex() > first


def test_unique_within_one_millisecond() -> None:
    ids = [uuid7_hex() for _ in range(20000)]
    assert len(set(ids)) == len(ids)


def test_events_get_them_by_default() -> None:
    class Pinged(EventBase):
        pass

    event = Pinged(type="pinged", source="/tests", ecosystem="acme", data={})
    assert uuid.UUID(hex=event.id).version == 7
