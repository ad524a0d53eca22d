"""Settings of the gateway process (env prefix ``PM_GATEWAY_``).

Complex values are JSON in the environment, e.g.
``PM_GATEWAY_CORS_ORIGINS='{"acme": ["https://portal.acme.example"]}'`` or
``PM_GATEWAY_ECO_RATE_LIMITS='{"acme": {"partner": {"rate": 500, "burst": 1000}}}'``.
"""

from __future__ import annotations

from pydantic import BaseModel, Field
from pydantic_settings import SettingsConfigDict

from mesh.settings import MeshSettings

# Measured with `make bench BENCH_ARGS=overload` on a 2-core machine: one worker sustains
# 8-16 echo calls (CPU-bound, ~1 ms) in flight within twice their unloaded p99, and 64 in
# flight cost 150-300 ms at p99 there instead of the 1-38 s of an unbounded queue. 64
# leaves room for operations whose NATS hop waits on a database, and matches a service
# process's own bound (MAX_CONCURRENCY).
MAX_IN_FLIGHT = 64


class RateLimitSpec(BaseModel):
    """A token bucket: ``rate`` requests per second on average, ``burst`` at once."""

    rate: float = Field(gt=0)
    burst: int = Field(ge=1)

    @property
    def window(self) -> float:
        """Seconds an empty bucket takes to fill again (the quota's time window)."""
        return self.burst / self.rate


class EcoRateLimits(BaseModel):
    """Per-ecosystem overrides; unset fields fall back to the gateway defaults."""

    partner: RateLimitSpec | None = None
    client: RateLimitSpec | None = None
    anonymous: RateLimitSpec | None = None


class GatewaySettings(MeshSettings):
    model_config = SettingsConfigDict(env_prefix="PM_GATEWAY_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    public_url: str = Field(
        default="",
        description="The gateway's external base URL (behind a proxy: what clients call): "
        "shown in the OpenAPI document and compared with DPoP proofs' htu",
    )
    # Shared rate-limit buckets between replicas; empty: buckets in this process.
    redis_url: str = ""
    rate_limit_key_prefix: str = "pm:rl:"
    rate_limits_enabled: bool = True
    partner_rate_limit: RateLimitSpec = RateLimitSpec(rate=200, burst=400)
    client_rate_limit: RateLimitSpec = RateLimitSpec(rate=100, burst=200)
    anonymous_rate_limit: RateLimitSpec = RateLimitSpec(rate=20, burst=40)
    eco_rate_limits: dict[str, EcoRateLimits] = {}
    # Browser origins allowed per ecosystem ("*" allows any origin).
    cors_origins: dict[str, list[str]] = {}
    cors_max_age: int = 600
    max_body_bytes: int = 1_048_576
    # The NATS hop of one operation waits this long for the service's reply.
    request_timeout: float = Field(default=10.0, gt=0)
    # Load shedding (gateway.shedding), per worker process: beyond this many requests at
    # once, 503 overloaded with Retry-After at once (0: no bound). Streams and probes
    # are not counted. More in flight than the worker can serve only queues on its event
    # loop (default: MAX_IN_FLIGHT above).
    max_in_flight: int = Field(default=MAX_IN_FLIGHT, ge=0)
    # One client (its credential as sent, else its address) holds at most this share of
    # the bound (at least one request): a greedy client cannot take every slot.
    client_share: float = Field(default=0.5, gt=0, le=1)
    # A connection refused within its Retry-After that asks again gets its next refusal
    # after this pause (an idle wait: a retry storm costs at most one refusal per pause
    # per connection); at most max_delayed_refusals wait at once (beyond: at once).
    repeat_refusal_delay_s: float = Field(default=0.01, ge=0, le=0.04)
    max_delayed_refusals: int = Field(default=1024, ge=0)
    # The whole request (queueing, authentication, the NATS hop) must be answered within
    # this many seconds, else 504 timeout (0: no deadline). The NATS hop never outlives it.
    request_deadline_s: float = Field(default=10.0, ge=0)
    # Paths (prefixes) of long-lived streams: neither bounded nor cut by the deadline,
    # like any request that asks for Accept: text/event-stream.
    stream_paths: list[str] = []
    # Live notification streams (gateway.livestream), per worker process: at most this
    # many open at once (503 beyond), a comment every heartbeat, the client's retry delay.
    max_streams: int = Field(default=10_000, ge=1)
    stream_heartbeat_s: float = Field(default=20.0, gt=0)
    stream_retry_ms: int = Field(default=2000, ge=100)
    token_cache: bool = True
    token_cache_size: int = 10_000
    jwks_refresh_cooldown: float = 5.0
    mashup_max_items: int = Field(default=20, ge=1)
    access_log: bool = True
    # DPoP (RFC 9449) proofs: accepted age (+ leeway, also into the future), replay cache
    # size, and whether to demand server nonces (DPoP-Nonce, derived from SECRET_KEY).
    dpop_max_age_s: float = 60.0
    dpop_leeway_s: float = 10.0
    dpop_replay_cache_size: int = 100_000
    dpop_nonce: bool = False
    dpop_nonce_period_s: int = 300

    def limits_for(self, eco: str | None) -> EcoRateLimits:
        """The effective partner/client/anonymous buckets of ``eco``."""
        own = self.eco_rate_limits.get(eco or "") or EcoRateLimits()
        return EcoRateLimits(
            partner=own.partner or self.partner_rate_limit,
            client=own.client or self.client_rate_limit,
            anonymous=own.anonymous or self.anonymous_rate_limit,
        )
