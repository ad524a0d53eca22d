"""What a process does at start: migrate when allowed, else wait (not ready) while its
database is behind; the commands that migrate ahead of it."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text

from deploy.migrations import PROCESSES, history
from mesh.db import Database, make_engine
from mesh.migrate import SchemaBehind, State, prepare, status, upgrade
from services.profile import models as profile_models
from services.profile.settings import ProfileSettings
from tests.migrations.conftest import PROFILE_REVISIONS


@pytest.fixture
async def profile_db(database_url: str) -> AsyncIterator[Database]:
    """The profile service's Database on the test's (empty) database."""
    db = Database(database_url, profile_models.metadata)
    yield db
    await db.dispose()


class TestPrepare:
    async def test_applies_pending_migrations_when_allowed(self, profile_db: Database) -> None:
        done = await prepare(profile_db, apply=True)
        assert done.state is State.CURRENT and done.applied == PROFILE_REVISIONS

    async def test_refuses_a_database_behind_when_not_allowed(self, profile_db: Database) -> None:
        with pytest.raises(SchemaBehind, match="partnermesh migrate profile"):
            await prepare(profile_db, apply=False, wait=False)
        await upgrade(profile_db.url, profile_models.history, "0001")
        with pytest.raises(SchemaBehind, match=r"behind \(at \['0001'\]"):
            await prepare(profile_db, apply=False, wait=False)
        assert (await status(profile_db.url, profile_models.history)).current == ("0001",)

    async def test_waits_until_the_migrate_step_ran(
        self, profile_db: Database, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.WARNING, logger="mesh.migrate")
        starting = asyncio.create_task(prepare(profile_db, apply=False, retry_s=0.05))
        deadline = time.monotonic() + 30
        while not any("waiting" in r.getMessage() for r in caplog.records):
            assert time.monotonic() < deadline and not starting.done()
            await asyncio.sleep(0.02)
        assert not starting.done()
        await upgrade(profile_db.url, profile_models.history)  # the migrate step
        ready = await asyncio.wait_for(starting, 30)
        assert ready.state is State.CURRENT and ready.applied == ()

    async def test_a_database_a_newer_release_migrated_is_served(
        self, profile_db: Database
    ) -> None:
        """Expand/contract: old replicas keep serving after the new release migrated."""
        await upgrade(profile_db.url, profile_models.history)
        engine = make_engine(profile_db.url)
        try:
            async with engine.begin() as conn:
                await conn.execute(text("UPDATE alembic_version SET version_num = '0099'"))
        finally:
            await engine.dispose()
        ahead = await prepare(profile_db, apply=False, wait=False)
        assert ahead.state is State.AHEAD and ahead.current == ("0099",)
        untouched = await prepare(profile_db, apply=True)
        assert untouched.state is State.AHEAD and untouched.applied == ()


class TestSetting:
    def test_on_except_in_production(self) -> None:
        assert ProfileSettings(environment="development").migrates_on_start() is True
        assert ProfileSettings(environment="test").migrates_on_start() is True
        production = ProfileSettings(environment="production", secret_key="s")
        assert production.migrates_on_start() is False

    def test_explicit_setting_wins(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("PM_PROFILE_MIGRATE_ON_START", "true")
        assert ProfileSettings(environment="production", secret_key="s").migrates_on_start()
        monkeypatch.setenv("PM_PROFILE_MIGRATE_ON_START", "false")
        assert not ProfileSettings(environment="development").migrates_on_start()


class TestCommands:
    def test_partnermesh_migrate_then_each_process_reports_current(self, tmp_path: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PM_")}
        var = tmp_path / "var"
        run = subprocess.run(
            [sys.executable, "-m", "deploy.cli", "migrate", "--var", str(var)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert run.returncode == 0, run.stderr
        lines = [json.loads(line) for line in run.stdout.splitlines()]
        assert [d["process"] for d in lines] == list(PROCESSES)
        assert all(d["state"] == "current" and d["applied"] for d in lines)
        assert {p.name for p in var.glob("*.db")} == {f"{p}.db" for p in PROCESSES}
        check = subprocess.run(
            [sys.executable, "-m", "services.profile", "migrate", "--status"],
            env={**env, "PM_VAR_DIR": str(var)},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert check.returncode == 0, check.stderr
        assert json.loads(check.stdout)["current"] == list(history("profile").script().get_heads())

    def test_status_of_an_unmigrated_database_fails_and_unknown_names_are_refused(
        self, tmp_path: Path
    ) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PM_")}
        cmd = [sys.executable, "-m", "deploy.cli", "migrate", "--var", str(tmp_path)]
        behind = subprocess.run(
            [*cmd, "--status", "portal"], env=env, capture_output=True, text=True, timeout=120
        )
        assert behind.returncode == 1 and json.loads(behind.stdout)["state"] == "behind"
        unknown = subprocess.run(
            [*cmd, "gateway"], env=env, capture_output=True, text=True, timeout=120
        )
        assert unknown.returncode == 2 and "no such process: gateway" in unknown.stderr
