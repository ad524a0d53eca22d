"""Token-bucket rate limits per partner and per client (per IP for anonymous calls).

Buckets live in this process by default, or in Redis when ``redis_url`` is set so
that every gateway replica draws from the same bucket. The answer carries the
IETF ``RateLimit-Policy`` / ``RateLimit`` fields (draft-ietf-httpapi-ratelimit-headers)
and, when refused, ``Retry-After``.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Protocol

from contracts.errors import ErrorCode
from gateway import metrics
from gateway.auth import Caller
from gateway.settings import EcoRateLimits, GatewaySettings, RateLimitSpec
from mesh.errors import MeshError

log = logging.getLogger(__name__)


class Buckets(Protocol):
    async def take(self, key: str, spec: RateLimitSpec, cost: int) -> tuple[bool, float]:
        """Take ``cost`` tokens if there are enough; return (taken, tokens left)."""
        ...


class LocalBuckets:
    """Buckets in this process (an LRU bounded dict of (tokens, last refill))."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self.max_keys = max_keys
        self._state: OrderedDict[str, tuple[float, float]] = OrderedDict()

    async def take(self, key: str, spec: RateLimitSpec, cost: int) -> tuple[bool, float]:
        return self.take_now(key, spec, cost)

    def take_now(
        self, key: str, spec: RateLimitSpec, cost: int, now: float | None = None
    ) -> tuple[bool, float]:
        if now is None:
            now = time.monotonic()
        tokens, last = self._state.get(key, (float(spec.burst), now))
        tokens = min(float(spec.burst), tokens + (now - last) * spec.rate)
        taken = tokens >= cost
        if taken:
            tokens -= cost
        self._state[key] = (tokens, now)
        self._state.move_to_end(key)
        if len(self._state) > self.max_keys:
            self._state.popitem(last=False)
        return taken, tokens


# Refill and take atomically on the Redis server, with the server's clock.
_TAKE = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then tokens = burst; ts = now end
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local taken = 0
if tokens >= cost then tokens = tokens - cost; taken = 1 end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return {taken, tostring(tokens)}
"""


RETRY_REDIS_AFTER = 5.0


class RedisBuckets:
    """Buckets shared by every gateway replica.

    When Redis fails, this replica keeps limiting with its own buckets (so limits hold
    per replica instead of failing open or refusing everyone) and tries Redis again
    after :data:`RETRY_REDIS_AFTER` seconds.
    """

    def __init__(self, client: Any, prefix: str = "pm:rl:") -> None:
        self.client = client
        self.prefix = prefix
        self._script = client.register_script(_TAKE)
        self._fallback = LocalBuckets()
        self._retry_at = float("-inf")

    async def take(self, key: str, spec: RateLimitSpec, cost: int) -> tuple[bool, float]:
        from redis.exceptions import RedisError

        if time.monotonic() < self._retry_at:  # Redis failed lately: do not wait on it again
            return await self._fallback.take(key, spec, cost)
        try:
            taken, tokens = await self._script(
                keys=[self.prefix + key], args=[spec.rate, spec.burst, cost]
            )
        except (RedisError, OSError) as exc:
            self._retry_at = time.monotonic() + RETRY_REDIS_AFTER
            log.warning(
                "redis rate limit unavailable; using local buckets for a while",
                extra={"error": str(exc), "retry_in_s": RETRY_REDIS_AFTER},
            )
            return await self._fallback.take(key, spec, cost)
        return bool(int(taken)), float(tokens)


@dataclass(slots=True)
class Verdict:
    """One bucket's answer for a request."""

    name: str
    spec: RateLimitSpec
    taken: bool
    tokens: float
    cost: int

    @property
    def remaining(self) -> int:
        return max(0, math.floor(self.tokens))

    @property
    def reset(self) -> int:
        """Seconds until the bucket is full again."""
        return math.ceil((self.spec.burst - self.tokens) / self.spec.rate)

    @property
    def retry_after(self) -> int:
        return max(1, math.ceil((self.cost - self.tokens) / self.spec.rate))


@functools.lru_cache(maxsize=256)
def _policy_field(quotas: tuple[tuple[str, int, float], ...]) -> str:
    return ", ".join(f'"{name}";q={burst};w={math.ceil(window)}' for name, burst, window in quotas)


def policy_field(keys: list[tuple[str, str, RateLimitSpec]]) -> str:
    return _policy_field(tuple((name, spec.burst, spec.window) for name, _, spec in keys))


def rate_limit_headers(verdicts: list[Verdict], policy: str | None = None) -> dict[str, str]:
    if not verdicts:
        return {}
    if policy is None:
        policy = _policy_field(tuple((v.name, v.spec.burst, v.spec.window) for v in verdicts))
    tightest = verdicts[0]  # refused first, then the least left relative to its size
    for v in verdicts[1:]:
        if (v.taken, v.tokens / v.spec.burst) < (
            tightest.taken,
            tightest.tokens / tightest.spec.burst,
        ):
            tightest = v
    headers = {
        "RateLimit-Policy": policy,
        "RateLimit": f'"{tightest.name}";r={tightest.remaining};t={tightest.reset}',
    }
    if not tightest.taken:
        headers["Retry-After"] = str(tightest.retry_after)
    return headers


class RateLimited(MeshError):
    def __init__(self, headers: dict[str, str]) -> None:
        super().__init__(ErrorCode.RATE_LIMITED, "too many requests; retry later")
        self.headers = headers


class RateLimiter:
    def __init__(self, settings: GatewaySettings, buckets: Buckets) -> None:
        self.settings = settings
        self.enabled = settings.rate_limits_enabled
        self.buckets = buckets
        self._limits: dict[str, EcoRateLimits] = {}
        # Buckets and RateLimit-Policy of recent callers (both derive from settings only).
        self._recent: dict[tuple[str, ...], tuple[list[tuple[str, str, RateLimitSpec]], str]] = {}

    def limits(self, eco: str) -> EcoRateLimits:
        found = self._limits.get(eco)
        if found is None:
            found = self._limits[eco] = self.settings.limits_for(eco)
        return found

    async def check(
        self, eco: str, caller: Caller, client_ip: str, cost: int = 1
    ) -> dict[str, str]:
        """Take ``cost`` from the caller's buckets; return headers or raise :class:`RateLimited`."""
        if not self.enabled:
            return {}
        keys, policy = self._keys_and_policy(eco, caller, client_ip)
        if isinstance(self.buckets, LocalBuckets):  # no I/O: skip the awaits
            local, now = self.buckets, time.monotonic()
            verdicts = [Verdict(n, s, *local.take_now(k, s, cost, now), cost) for n, k, s in keys]
        else:
            verdicts = [await self._take(name, key, spec, cost) for name, key, spec in keys]
        headers = rate_limit_headers(verdicts, policy)
        if "Retry-After" in headers:  # the tightest bucket refused, so one did
            metrics.rate_limited.labels("gateway", caller.partner or "-").inc()
            raise RateLimited(headers)
        return headers

    def _keys_and_policy(
        self, eco: str, caller: Caller, ip: str
    ) -> tuple[list[tuple[str, str, RateLimitSpec]], str]:
        claims = caller.claims
        if claims is None:
            recent_key: tuple[str, ...] = (eco, ip)
        else:
            recent_key = (claims.eco, claims.client_id, claims.partner or "", "")
        found = self._recent.get(recent_key)
        if found is None:
            if len(self._recent) >= 10_000:
                self._recent.clear()
            keys = self._keys(eco, caller, ip)
            found = self._recent[recent_key] = (keys, policy_field(keys))
        return found

    def _keys(self, eco: str, caller: Caller, ip: str) -> list[tuple[str, str, RateLimitSpec]]:
        claims = caller.claims
        if claims is None:
            spec = self.limits(eco).anonymous
            assert spec is not None
            return [("anonymous", f"{eco}:ip:{ip}", spec)]
        lim = self.limits(claims.eco)
        assert lim.partner is not None and lim.client is not None
        keys = [("client", f"{claims.eco}:client:{claims.client_id}", lim.client)]
        if claims.partner:
            keys.insert(0, ("partner", f"{claims.eco}:partner:{claims.partner}", lim.partner))
        return keys

    async def _take(self, name: str, key: str, spec: RateLimitSpec, cost: int) -> Verdict:
        taken, tokens = await self.buckets.take(key, spec, cost)
        return Verdict(name, spec, taken, tokens, cost)


def make_buckets(settings: GatewaySettings) -> tuple[Buckets, Any]:
    """The buckets the settings ask for, and the Redis client to close (or None)."""
    if not settings.redis_url:
        return LocalBuckets(), None
    import redis.asyncio as redis

    client = redis.from_url(settings.redis_url, socket_timeout=0.5, socket_connect_timeout=0.5)
    return RedisBuckets(client, settings.rate_limit_key_prefix), client
