"""A small time-bounded cache of read-mostly rows (ecosystems, clients) for the token endpoint.

Only the token, introspection and revocation endpoints read through it; a change made
by this process's admin API forgets the ecosystem's entries at once, a change made by
another replica shows up within ``ttl`` seconds.
"""

from __future__ import annotations

import time
from typing import Any


class TtlCache:
    def __init__(self, ttl: float = 5.0, size: int = 4096) -> None:
        self.ttl = ttl
        self.size = size
        self._items: dict[tuple[str, ...], tuple[float, Any]] = {}
        self._generations: dict[str, int] = {}

    def age(self, key: tuple[str, ...]) -> float | None:
        """Seconds since ``key`` was put; None when absent."""
        hit = self._items.get(key)
        return None if hit is None else time.monotonic() - hit[0]

    def generation(self, eco: str) -> int:
        """Bumped by every :meth:`forget` of ``eco``: a reader that started before a
        forget must not put what it read (see :meth:`put_if`)."""
        return self._generations.get(eco, 0)

    def put_if(self, generation: int, key: tuple[str, ...], value: Any) -> None:
        """:meth:`put`, unless ``key``'s ecosystem was forgotten since ``generation``."""
        if self.generation(key[0]) == generation:
            self.put(key, value)

    def get(self, key: tuple[str, ...]) -> Any | None:
        hit = self._items.get(key)
        if hit is None or time.monotonic() - hit[0] > self.ttl:
            return None
        return hit[1]

    def put(self, key: tuple[str, ...], value: Any) -> None:
        if len(self._items) >= self.size:
            self._items.clear()
        self._items[key] = (time.monotonic(), value)

    def forget(self, eco: str) -> None:
        self._generations[eco] = self._generations.get(eco, 0) + 1
        for key in [k for k in self._items if k[0] == eco]:
            del self._items[key]
