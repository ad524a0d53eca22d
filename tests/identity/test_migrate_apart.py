"""The server's schema made ready by a child ``python -m identity migrate`` (so alembic
never loads into the long-running process): applied, checked, refused, failed."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from mesh.migrate import SchemaBehind, State
from mesh.migrate_apart import prepare_apart

ARGV = [sys.executable, "-m", "identity", "migrate"]


def env_for(db: Path) -> dict[str, str]:
    return {**os.environ, "PM_IDENTITY_DATABASE_URL": f"sqlite+aiosqlite:///{db}"}


async def test_applies_then_checks(tmp_path: Path) -> None:
    env = env_for(tmp_path / "identity.db")
    applied = await prepare_apart("identity", True, ARGV, env)
    assert applied.state is State.CURRENT and applied.applied and applied.head
    checked = await prepare_apart("identity", False, ARGV, env)
    assert checked.state is State.CURRENT and not checked.applied
    assert checked.current == applied.head


async def test_behind_is_refused_without_waiting(tmp_path: Path) -> None:
    env = env_for(tmp_path / "empty.db")
    with pytest.raises(SchemaBehind, match="behind"):
        await prepare_apart("identity", False, ARGV, env, wait=False)


async def test_a_child_without_a_status_fails_loudly(tmp_path: Path) -> None:
    argv = [sys.executable, "-c", "import sys; sys.exit('no database here')"]
    with pytest.raises(RuntimeError, match="no database here"):
        await prepare_apart("identity", True, argv, env_for(tmp_path / "x.db"))
