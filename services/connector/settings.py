from pydantic_settings import SettingsConfigDict

from mesh.settings import ServiceSettings


class ConnectorSettings(ServiceSettings):
    """Settings of the connector (env prefix ``PM_CONNECTOR_``).

    ``secret_key`` derives the vault key; ``previous_secret_keys`` still decrypt, so a
    key is rotated by moving the old one there: secrets are re-encrypted at start.
    """

    model_config = SettingsConfigDict(env_prefix="PM_CONNECTOR_", extra="ignore")

    previous_secret_keys: list[str] = []
    # Durable JetStream consumer that turns partner events into webhook deliveries.
    # declared in contracts.bus.CONSUMERS; the bus grants that name only
    webhook_consumer: str = "connector-webhooks"
    # Durable JetStream consumer keeping the alliances projection (mesh.alliances).
    alliance_consumer: str = "connector-alliances"
    # Back-ends the deployment allows on internal networks for every ecosystem (CIDRs).
    egress_allow: list[str] = []
    invoke_timeout_s: float = 10.0
    max_attempts: int = 3  # idempotent methods only; others are tried once
    retry_backoff_s: float = 0.2
    max_response_bytes: int = 1_000_000
    max_redirects: int = 3
    breaker_failures: int = 5
    breaker_cooldown_s: float = 30.0
    # How long an invocation may reuse what it read of the registry (operation, grants,
    # back-end, allow-list). Changes made through this replica apply at once; changes
    # made through another replica apply within this bound. 0 turns the cache off.
    plan_cache_ttl_s: float = 1.0
    idempotency_stale_s: float = 120.0
    webhook_tolerance_s: int = 300
    delivery_max_attempts: int = 10
    delivery_backoff_s: float = 5.0
    delivery_backoff_max_s: float = 6 * 3600.0
    delivery_timeout_s: float = 10.0
    delivery_poll_s: float = 1.0
    flow_poll_s: float = 0.5
    flow_lease_s: float = 15.0
    flow_concurrency: int = 16  # flows one replica drives at a time
    flow_step_attempts: int = 3  # transient failures (timeouts, 5xx) before compensating
    flow_retry_backoff_s: float = 1.0
