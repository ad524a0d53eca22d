"""Settings of the portal process (env prefix ``PM_PORTAL_``)."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from mesh.settings import MeshSettings, var_dir


class PortalSettings(MeshSettings):
    model_config = SettingsConfigDict(env_prefix="PM_PORTAL_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8082
    public_url: str = "http://127.0.0.1:8082"
    gateway_url: str = "http://127.0.0.1:8080"
    eco: str = "acme"
    client_id: str = "portal"
    client_secret: str = ""
    credentials_file: str = Field(
        default="", description="JSON with clients.<client_id>.client_secret (demo identities)"
    )
    database_url: str = ""
    scope: str = (
        "openid profile offline_access profile:read profile:write directory:read forum:read "
        "forum:write workspace:read workspace:write matching:read intro:write connector:read "
        "connector:invoke connector:admin broker:curate admin"
    )
    session_idle_seconds: int = Field(default=8 * 3600, ge=60)
    refresh_margin_seconds: int = Field(default=30, ge=0)
    gateway_timeout: float = Field(default=10.0, gt=0)
    card_cache_seconds: int = Field(default=120, ge=0)

    @property
    def secure_cookies(self) -> bool:
        return self.public_url.startswith("https://")

    @property
    def redirect_uri(self) -> str:
        return self.public_url.rstrip("/") + "/auth/callback"

    @property
    def issuer(self) -> str:
        return f"{self.identity_url.rstrip('/')}/eco/{self.eco}"

    def database_url_or_default(self) -> str:
        if self.database_url:
            return self.database_url
        path = var_dir() / "portal.db"
        path.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite+aiosqlite:///{path}"

    def resolved_client_secret(self) -> str:
        """The configured secret, else the one in the credentials file (demo identities)."""
        if self.client_secret:
            return self.client_secret
        path = (
            Path(self.credentials_file)
            if self.credentials_file
            else var_dir() / "demo-identity.json"
        )
        try:
            creds = json.loads(path.read_text())
            return str(creds["clients"][self.client_id]["client_secret"])
        except (OSError, ValueError, KeyError, TypeError):
            return ""
