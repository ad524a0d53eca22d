"""Settings refuse development secrets outside development."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from mesh.settings import DEV_SECRET, ServiceSettings
from services.profile.settings import ProfileSettings


class TestSecrets:
    def test_production_refuses_the_development_secret(self) -> None:
        with pytest.raises(ValidationError, match="SECRET_KEY"):
            ProfileSettings(environment="production")

    def test_production_accepts_a_real_secret(self) -> None:
        assert (
            ProfileSettings(environment="production", secret_key="x" * 40).secret_key != DEV_SECRET
        )

    def test_development_default_is_allowed(self) -> None:
        assert ProfileSettings().environment == "development"

    def test_env_prefix_is_per_process(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("PM_PROFILE_NATS_URL", "nats://10.0.0.1:4222")
        assert ProfileSettings().nats_url == "nats://10.0.0.1:4222"
        assert ServiceSettings().nats_url != "nats://10.0.0.1:4222"

    def test_sqlite_default_lives_under_var(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        monkeypatch.setenv("PM_VAR_DIR", str(tmp_path))
        url = ProfileSettings().database_url_or_default("profile")
        assert url == f"sqlite+aiosqlite:///{tmp_path / 'profile.db'}"
