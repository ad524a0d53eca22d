"""Proof ``jti`` replay detection (RFC 9449 §11.1), in this process or shared by replicas.

:class:`ReplayCache` keeps the ``jti`` values of the acceptance window in bounded
memory; :class:`SharedReplay` puts them in Redis (``SET NX PX``) so a proof used at one
replica is refused at every other, with the local cache as its fallback while Redis is
unreachable. The gateway and the identity provider use the same two.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from typing import Any

log = logging.getLogger(__name__)

RETRY_REDIS_AFTER = 5.0


class ReplayCache:
    """``jti`` values seen within the acceptance window, in bounded memory.

    Entries expire when their proof leaves the window. When the cache is full it
    forgets the oldest entry and raises a floor: from then on a proof issued at or
    before the forgotten one's ``iat`` counts as replayed. Memory stays bounded and
    no replay slips through; only proofs older than the floor are refused under a
    flood, which fresh proofs never are.
    """

    def __init__(self, size: int = 100_000) -> None:
        self.size = size
        self._seen: OrderedDict[str, tuple[float, int]] = OrderedDict()
        self.floor = 0

    def __len__(self) -> int:
        return len(self._seen)

    def seen(self, key: str, iat: int, expires: float, now: float) -> bool:
        """Record ``key``; True when it was already there (or may have been forgotten)."""
        while self._seen:
            first = next(iter(self._seen.values()))
            if first[0] > now:
                break
            self._seen.popitem(last=False)
        if iat <= self.floor or key in self._seen:
            return True
        self._seen[key] = (expires, iat)
        while len(self._seen) > self.size:
            _, (_, forgotten_iat) = self._seen.popitem(last=False)
            self.floor = max(self.floor, forgotten_iat)
        return False


class SharedReplay:
    """``jti`` replay detection shared by every replica through Redis (``SET NX PX``).

    When Redis fails, this replica falls back to its own cache for a few seconds (as the
    rate limiter does): replays at this replica are still refused.
    """

    def __init__(self, client: Any, prefix: str, local: ReplayCache) -> None:
        self.client = client
        self.prefix = prefix + "dpop:"  # e.g. pm:gateway:dpop:<jkt>:<jti>
        self.local = local
        self._retry_at = float("-inf")

    async def seen(self, key: str, iat: int, expires: float) -> bool:
        from redis.exceptions import RedisError

        now = time.time()
        if time.monotonic() >= self._retry_at:
            try:
                ttl_ms = max(1, int((expires - now) * 1000))
                fresh = await self.client.set(self.prefix + key, b"1", nx=True, px=ttl_ms)
                return not fresh
            except (RedisError, OSError) as exc:
                self._retry_at = time.monotonic() + RETRY_REDIS_AFTER
                log.warning(
                    "redis DPoP replay cache unavailable; using the local one for a while",
                    extra={"error": str(exc), "retry_in_s": RETRY_REDIS_AFTER},
                )
        return self.local.seen(key, iat, expires, now)
