"""Fixtures of the migration tests: every process's history, and a profile database with
rows in it at a chosen point of its history."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import MetaData, Table
from sqlalchemy.ext.asyncio import AsyncEngine

from deploy.migrations import PROCESSES, history
from mesh.db import make_engine
from mesh.migrate import History

WHEN = datetime(2024, 5, 17, 9, 30, tzinfo=UTC)
# The profile history's revisions ("0001", "0002", ...): its tests run the real history.
PROFILE_REVISIONS = tuple(
    sorted(p.name[1:5] for p in history("profile").directory.glob("r[0-9]*.py"))
)
NEXT_REVISION = f"{len(PROFILE_REVISIONS) + 1:04d}"


@pytest.fixture(params=list(PROCESSES))
def process_history(request: pytest.FixtureRequest) -> History:
    """The migration history of each database-owning process in turn."""
    return history(request.param)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """A plain engine on the test's database, to look at it and put rows in it."""
    eng = make_engine(database_url)
    yield eng
    await eng.dispose()


def copy_with(metadata: MetaData, table: str, *columns: Any) -> MetaData:
    """A copy of ``metadata`` whose ``table`` has ``columns`` too (a model change)."""
    copy = MetaData()
    for t in metadata.sorted_tables:
        t.to_metadata(copy)
    Table(table, copy, *columns, extend_existing=True)
    return copy


def person_row(person: str) -> dict[str, Any]:
    """A persons row as the baseline schema has it (no created_at)."""
    return {
        "eco": "acme",
        "person": person,
        "partner": "acme-corp",
        "name": person.title(),
        "fields": {"headline": "keeps its data"},
        "visibility": {},
        "verified": False,
        "verified_note": "",
        "updated_at": WHEN,
    }
