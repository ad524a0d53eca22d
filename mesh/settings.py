"""Settings shared by every process; each process subclasses with its own env prefix."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from mesh.identityroute import IdentityRoute

# Defaults of mesh.consumer.RetrySchedule (kept here: settings import no runtime module).
DEFAULT_RETRY_DELAYS = (1, 2, 5, 10, 30, 60, 120, 300, 600, 900, 1800, 3600)
DEFAULT_MAX_DELIVER = 36

DEV_SECRET = "dev-only-not-a-secret"


def var_dir() -> Path:
    """Where local state lives (SQLite files, NATS data, keys): ``./var`` by default."""
    import os

    return Path(os.environ.get("PM_VAR_DIR", "var")).resolve()


def database_url_or_default(url: str, name: str) -> str:
    """``url``, or the embedded default: a SQLite file ``var/<name>.db``."""
    if url:
        return url
    path = var_dir() / f"{name}.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite+aiosqlite:///{path}"


class BusSettings(BaseSettings):
    """A process's identity on the bus (:class:`mesh.nats.BusAuth`): its nkey seed file,
    its reply inbox prefix, the CA of the servers' TLS certificates. None set = a plain
    connection (development, tests); `partnermesh up` and the manifests always set them."""

    model_config = SettingsConfigDict(env_prefix="PM_", extra="ignore")

    nats_nkey_seed_file: str = ""
    nats_inbox_prefix: str = ""
    nats_tls_ca_file: str = ""


class MeshSettings(BusSettings):
    """Common settings. Subclasses set ``model_config = SettingsConfigDict(env_prefix=...)``."""

    model_config = SettingsConfigDict(env_prefix="PM_", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    instance: str = "0"
    nats_url: str = "nats://127.0.0.1:4222"
    log_level: str = "INFO"
    log_json: bool = True
    # The operations port (mesh.observe): /metrics (never on a public port), /healthz,
    # /readyz. 0: a free port, logged at start.
    observe_host: str = "127.0.0.1"
    observe_port: int = 0
    otel: bool = Field(
        default=False, description="OpenTelemetry spans (mesh.tracing; needs opentelemetry-sdk)"
    )
    # Token verification (zero trust): issuers are <identity_url>/eco/<eco>.
    identity_url: str = "http://127.0.0.1:8081"
    # Where this process fetches identity's discovery documents and keys when the public
    # address above is not reachable from inside the deployment (a cluster Service, e.g.
    # http://identity:8081); empty: at identity_url.
    identity_internal_url: str = ""
    audience: str = "partnermesh"
    extra_trusted_issuers: list[str] = []
    # Secrets that must be changed outside development.
    secret_key: str = DEV_SECRET
    # Apply pending schema migrations at start (under the migration lock); unset: on
    # except in production, where the ``migrate`` step runs first and a process whose
    # database is behind waits, not ready, until it has (mesh.migrate.prepare).
    migrate_on_start: bool | None = None
    # An HTTP process whose dependencies (NATS, JetStream, its database) are not up yet
    # waits this long for them before it serves: /readyz 503, other requests 503, until
    # its start-up (retrying with backoff, for ever) is done.
    startup_grace_s: float = 10.0

    @model_validator(mode="after")
    def _refuse_default_secrets(self) -> MeshSettings:
        if self.environment == "production" and self.secret_key == DEV_SECRET:
            prefix = self.model_config.get("env_prefix", "PM_")
            raise ValueError(
                f"{prefix}SECRET_KEY still has the development default; "
                "set a real secret before running in production"
            )
        return self

    def identity_route(self) -> IdentityRoute:
        from mesh.identityroute import IdentityRoute

        return IdentityRoute(self.identity_url, self.identity_internal_url)

    def migrates_on_start(self) -> bool:
        if self.migrate_on_start is None:
            return self.environment != "production"
        return self.migrate_on_start


class ServiceSettings(MeshSettings):
    """Settings of a NATS service that owns a database."""

    database_url: str = ""
    # Requests this process works on at once (NATS request handlers); beyond, a request
    # is answered ``overloaded`` at once (the gateway: 503 with Retry-After), not queued.
    max_concurrency: int = Field(default=64, ge=1)
    # Event consumers (mesh.consumer.RetrySchedule): an event that fails for now is
    # delivered again after these delays (seconds; the last repeats) up to
    # consumer_max_deliver deliveries, then it is a dead letter. The default spans ~25 h.
    consumer_retry_delays: list[float] = Field(
        default_factory=lambda: [float(d) for d in DEFAULT_RETRY_DELAYS]
    )
    consumer_max_deliver: int = DEFAULT_MAX_DELIVER
    consumer_ack_wait_s: float = 30.0

    def database_url_or_default(self, name: str) -> str:
        return database_url_or_default(self.database_url, name)
