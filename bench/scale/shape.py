"""The shape of a generated ecosystem: how many of everything, ids, clocks, seeded randomness.

One size (``people``) fixes everything else in the proportions of the large case:
100k people, 10k companies, 1M forum posts, 50k introductions. Ids are derived from
indices, so any part of the generator (and the benchmark) can name a person, a
company or a thread without reading the database.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

# Bump when the generated data changes: caches are keyed by size and this version.
VERSION = 1
ECO = "bench"
CHUNK = 5000
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)

Rows = list[dict[str, Any]]


@dataclass(frozen=True)
class Shape:
    people: int

    @property
    def companies(self) -> int:
        return max(3, self.people // 10)

    @property
    def posts(self) -> int:
        return self.people * 10

    @property
    def introductions(self) -> int:
        return self.people // 2

    @property
    def threads(self) -> int:
        return max(10, self.people // 50)

    @property
    def long_thread_posts(self) -> int:
        """The posts of thread 0, the long thread (a twentieth of all posts)."""
        return self.posts // 20

    @property
    def notifications_per_person(self) -> int:
        return 5

    def rng(self, part: str) -> random.Random:
        return random.Random(f"{part}:{self.people}:{VERSION}")

    def key(self) -> str:
        return f"v{VERSION}-{self.people}"


def person_id(i: int) -> str:
    return f"u{i:07d}"


def partner_of(shape: Shape, i: int) -> str:
    return partner_id(i % shape.companies)


def partner_id(j: int) -> str:
    return f"c{j:06d}"


def thread_id(t: int) -> str:
    return f"t_{t:08d}"


def post_id(n: int) -> str:
    return f"p_{n:09d}"


def at(seconds: float) -> datetime:
    return EPOCH + timedelta(seconds=seconds)


def chunked(rows: Iterator[dict[str, Any]], size: int = CHUNK) -> Iterator[Rows]:
    chunk: Rows = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
