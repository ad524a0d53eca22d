"""Every database-owning process's migration history, for ``partnermesh migrate`` and ``up``.

Each process migrates with its own settings (``PM_<NAME>_DATABASE_URL``, else its SQLite
file under the state directory), exactly as ``python -m <process> migrate`` would.
"""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Iterator
from pathlib import Path

from mesh.migrate import History, Status, upgrade

# process → (module declaring ``history``, settings class)
PROCESSES: dict[str, tuple[str, str]] = {
    "identity": ("identity.store.models", "identity.settings:IdentitySettings"),
    "profile": ("services.profile.models", "services.profile.settings:ProfileSettings"),
    "matching": ("services.matching.models", "services.matching.settings:MatchingSettings"),
    "collaboration": (
        "services.collaboration.models",
        "services.collaboration.settings:CollaborationSettings",
    ),
    "connector": ("services.connector.models", "services.connector.settings:ConnectorSettings"),
    "portal": ("portal.models", "portal.settings:PortalSettings"),
}


def history(name: str) -> History:
    found: History = importlib.import_module(PROCESSES[name][0]).history
    return found


def database_url(name: str) -> str:
    module, cls = PROCESSES[name][1].split(":")
    settings = getattr(importlib.import_module(module), cls)()
    url: str = settings.database_url_or_default(*(() if name == "portal" else (name,)))
    return url


@contextlib.contextmanager
def state_dir(var: Path) -> Iterator[None]:
    """Resolve default SQLite files under ``var`` (as the launched processes do)."""
    before = os.environ.get("PM_VAR_DIR")
    os.environ["PM_VAR_DIR"] = str(var)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("PM_VAR_DIR", None)
        else:
            os.environ["PM_VAR_DIR"] = before


async def migrate(names: list[str], var: Path) -> list[Status]:
    """Apply each process's pending migrations, in order; the first failure stops."""
    done = []
    with state_dir(var):
        for name in names:
            done.append(await upgrade(database_url(name), history(name)))
    return done
