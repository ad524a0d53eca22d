"""The process around the provider: settings, NATS at start, seed-demo idempotency."""

from __future__ import annotations

import json
import os
import stat

import pytest
from pydantic import ValidationError

from identity import cli
from identity.app import NatsUnavailable, create_app
from identity.settings import IdentitySettings
from tests.support import infra


class TestSettings:
    def test_defaults(self, monkeypatch):
        monkeypatch.delenv("PM_IDENTITY_PORT", raising=False)
        settings = IdentitySettings()
        assert settings.port == 8081 and settings.public_url == "http://127.0.0.1:8081"
        assert settings.issuer("acme") == "http://127.0.0.1:8081/eco/acme"
        assert settings.database_url_or_default().startswith("sqlite+aiosqlite:///")

    def test_env_prefix(self, monkeypatch):
        monkeypatch.setenv("PM_IDENTITY_PUBLIC_URL", "https://id.example")
        assert IdentitySettings().secure_cookies

    def test_production_refuses_default_secrets(self):
        with pytest.raises(ValidationError):
            IdentitySettings(environment="production", secret_key="real")
        with pytest.raises(ValidationError):
            IdentitySettings(environment="production", key_encryption_secret="real")
        IdentitySettings(environment="production", secret_key="a", key_encryption_secret="b")


class TestStartup:
    async def test_unreachable_nats_fails_clearly(self, tmp_path):
        port = infra.free_port()
        settings = IdentitySettings(
            nats_url=f"nats://127.0.0.1:{port}",
            nats_connect_timeout_s=1,
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'x.db'}",
        )
        app = create_app(settings)
        with pytest.raises(NatsUnavailable, match=f"127.0.0.1:{port}"):
            async with app.router.lifespan_context(app):
                pass


class TestSeedDemo:
    async def test_idempotent_and_private(self, tmp_path, idp_database, demo_hashes):
        settings = IdentitySettings(database_url=idp_database)
        out = tmp_path / "creds.json"
        first = await cli.seed_demo(settings, out, demo_hashes)
        assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
        assert len(first["clients"]["northwind-backend"]["client_secret"]) >= 43  # 256 bits
        assert first["clients"]["mesh-cli"]["client_secret"] is None
        second = await cli.seed_demo(settings, out, demo_hashes)
        assert second == first == json.loads(out.read_text())
        out.unlink()  # file lost: secrets are re-issued, never recovered
        third = await cli.seed_demo(settings, out, demo_hashes)
        assert (
            third["clients"]["portal"]["client_secret"]
            != first["clients"]["portal"]["client_secret"]
        )
