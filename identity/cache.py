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
        for key in [k for k in self._items if k[0] == eco]:
            del self._items[key]
