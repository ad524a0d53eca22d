"""Settings of the identity provider (env prefix ``PM_IDENTITY_``)."""

from __future__ import annotations

import ipaddress

from pydantic import Field, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from mesh.settings import DEV_SECRET, MeshSettings, database_url_or_default
from mesh.tokens import issuer_for


class IdentitySettings(MeshSettings):
    model_config = SettingsConfigDict(env_prefix="PM_IDENTITY_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8081
    public_url: str = "http://127.0.0.1:8081"
    database_url: str = ""
    # Encrypts private signing keys and upstream secrets at rest; signs CSRF tokens.
    key_encryption_secret: str = DEV_SECRET
    # Password hashing (argon2id): no weaker than Keycloak's defaults (m=7 MiB, t=5, p=1).
    argon2_time_cost: int = 5
    argon2_memory_kib: int = 7168
    argon2_parallelism: int = 1
    # Login throttling: failures per account / per address within the window, then lockout.
    login_max_failures_account: int = 5
    login_max_failures_address: int = 30
    login_window_s: int = 900
    login_lockout_s: int = 900
    session_ttl_s: int = 8 * 3600
    code_ttl_s: int = 60
    # The token endpoint's lean path (identity/lean/): on, the common client-credentials
    # request is answered by a short-cut in front of FastAPI and audit batches on a SQLite
    # file by their own writer; off, every request goes through FastAPI and authlib.
    lean: bool = True
    relay_poll_interval: float = 1.0
    # After a commit, gather events this long before publishing them in one round.
    relay_linger_s: float = 0.02
    # How long one attempt to reach NATS at start may take (start-up retries for ever).
    nats_connect_timeout_s: float = 10.0
    # The ecosystem whose operators manage every ecosystem (/admin/ecosystems); empty: none.
    platform_ecosystem: str = ""
    # DPoP (RFC 9449): a proof's iat may be this old (plus the leeway, also into the
    # future); its jti is remembered that long, in a cache of bounded size.
    dpop_max_age_s: float = 60.0
    dpop_leeway_s: float = 10.0
    dpop_replay_cache_size: int = 100_000
    # With several replicas: the Redis they share proof jti values through (empty: each
    # replica remembers its own), and the prefix of those keys.
    redis_url: str = ""
    redis_key_prefix: str = "pm:identity:"
    # Ecosystems whose token endpoint demands server nonces in proofs ("*": every one).
    dpop_nonce_ecosystems: list[str] = []
    dpop_nonce_period_s: int = 300
    # OpenID Connect Back-Channel Logout: logout tokens go only to public addresses
    # (mesh.egress) but for these networks (e.g. ["127.0.0.1"] on one machine); each POST
    # may take this long; other replicas' logouts are picked up this often.
    backchannel_allowed_networks: list[str] = []
    backchannel_timeout_s: float = 5.0
    backchannel_poll_s: float = 2.0
    # How often expired login sessions are ended (their clients told, their refresh
    # tokens revoked); a refresh against an expired session is refused at once anyway.
    session_sweep_s: float = 30.0
    # Device Authorization Grant (RFC 8628): how long a device code lives, the polling
    # interval it starts with, and wrong user codes per address within LOGIN_WINDOW_S.
    device_code_ttl_s: int = 600
    device_interval_s: int = 5
    device_max_failures: int = 10
    # Dynamic client registration (RFC 7591): longest life of an initial access token.
    initial_access_token_max_ttl_s: int = 30 * 24 * 3600
    trusted_proxies: list[str] = Field(
        default=[],
        description="Addresses or CIDR networks of the reverse proxies in front of the "
        "provider: only a peer among them may name the client's address in "
        "X-Forwarded-For (what login throttling counts). Empty: the peer's own address.",
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _proxy_networks(cls, value: list[str]) -> list[str]:
        """Each entry an IP address or network (refused at start-up when it is not)."""
        return [
            str(ipaddress.ip_network(v.strip(), strict=False))
            if "/" in v
            else str(ipaddress.ip_address(v.strip()))
            for v in value
        ]

    @model_validator(mode="after")
    def _refuse_default_key_secret(self) -> IdentitySettings:
        if self.environment == "production" and self.key_encryption_secret == DEV_SECRET:
            raise ValueError(
                "PM_IDENTITY_KEY_ENCRYPTION_SECRET still has the development default; "
                "set a real secret before running in production"
            )
        return self

    def database_url_or_default(self, name: str = "identity") -> str:
        return database_url_or_default(self.database_url, name)

    def issuer(self, eco: str) -> str:
        return issuer_for(self.public_url, eco)

    @property
    def secure_cookies(self) -> bool:
        return self.public_url.startswith("https://")
