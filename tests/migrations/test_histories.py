"""Every process's migrations build exactly the schema its models describe, on each engine."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import setuptools
from sqlalchemy import Column, MetaData, String
from sqlalchemy.exc import DBAPIError

from deploy.migrations import PROCESSES, history
from mesh.migrate import History, State, differences, revision, status, upgrade
from tests.migrations.conftest import NEXT_REVISION, PROFILE_REVISIONS, copy_with

ROOT = Path(__file__).resolve().parents[2]


class TestModelsAndMigrationsAgree:
    async def test_head_is_what_the_models_describe(
        self, process_history: History, database_url: str
    ) -> None:
        status = await upgrade(database_url, process_history)
        revisions = [r.revision for r in process_history.script().walk_revisions()]
        assert status.state is State.CURRENT
        assert list(status.applied) == list(reversed(revisions))
        assert await differences(database_url, process_history) == []

    async def test_a_model_change_without_its_migration_is_found(self, database_url: str) -> None:
        profile = history("profile")
        changed = copy_with(profile.metadata, "persons", Column("pronouns", String(40)))
        drifted = History("profile", changed, profile.directory, unmanaged=profile.unmanaged)
        await upgrade(database_url, profile)
        diffs = await differences(database_url, drifted)
        assert [(d[0], d[2], d[3].name) for d in diffs] == [("add_column", "persons", "pronouns")]

    async def test_a_second_upgrade_changes_nothing(self, database_url: str) -> None:
        profile = history("profile")
        await upgrade(database_url, profile)
        again = await upgrade(database_url, profile)
        assert again.state is State.CURRENT and again.applied == () and not again.adopted


class TestHistoriesShape:
    def test_a_metadata_belongs_to_one_history(self) -> None:
        profile = history("profile")
        with pytest.raises(ValueError, match="already has a history"):
            History("other", profile.metadata, profile.directory)
        assert history("profile") is profile

    def test_one_linear_history_per_process(self, process_history: History) -> None:
        script = process_history.script()
        assert len(script.get_heads()) == 1, "two heads: rebase the newer revision on the other"
        revisions = list(script.walk_revisions())
        assert [r.revision for r in reversed(revisions)] == [
            f"{n:04d}" for n in range(1, len(revisions) + 1)
        ]
        for rev in revisions:
            assert re.fullmatch(rf"r{rev.revision}_\w+\.py", Path(rev.path).name)

    def test_each_process_owns_one_history(self) -> None:
        histories = [history(name) for name in PROCESSES]
        assert [h.name for h in histories] == list(PROCESSES)
        assert len({h.directory for h in histories}) == len(histories)
        assert len({h.lock_key for h in histories}) == len(histories)

    def test_the_kit_tables_are_part_of_each_schema(self) -> None:
        for name in PROCESSES:
            tables = set(history(name).metadata.tables)
            assert ("mesh_outbox" in tables) is (name != "portal"), name
            assert ("mesh_inbox" in tables) is (name not in ("portal", "identity")), name

    def test_the_wheel_ships_every_history(self) -> None:
        found = setuptools.find_packages(
            str(ROOT),
            include=["contracts*", "mesh*", "identity*", "gateway*", "services*", "portal*"],
        )
        for name in PROCESSES:
            package = ".".join(history(name).directory.relative_to(ROOT).parts)
            assert package in found, package
        assert "mesh.migrations" in found  # env.py; script.py.mako is package data (*.mako)


def history_copy(tmp_path: Path, name: str, metadata: MetaData | None = None) -> History:
    """``name``'s history with its revisions copied to ``tmp_path`` (to add revisions to)."""
    original = history(name)
    directory = tmp_path / "migrations"
    shutil.copytree(original.directory, directory)
    if metadata is None:
        metadata = copy_with(original.metadata, "persons")  # a metadata has one history
    return History(name, metadata, directory, unmanaged=original.unmanaged)


FAILING = '''"""A revision that fails half-way."""

import sqlalchemy as sa
from alembic import op

revision = "{next}"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("persons", sa.Column("pronouns", sa.String(40)))
    op.execute("UPDATE no_such_table SET x = 1")


def downgrade() -> None:
    pass
'''


class TestWritingAndApplyingRevisions:
    async def test_a_failing_revision_leaves_the_database_as_it_was(
        self, tmp_path: Path, database_url: str
    ) -> None:
        copy = history_copy(tmp_path, "profile")
        failing = FAILING.replace("{next}", NEXT_REVISION).replace("{head}", PROFILE_REVISIONS[-1])
        (copy.directory / f"r{NEXT_REVISION}_fails.py").write_text(failing)
        await upgrade(database_url, history("profile"))
        with pytest.raises(DBAPIError):
            await upgrade(database_url, copy)
        after = await status(database_url, history("profile"))
        assert after.current == PROFILE_REVISIONS[-1:]
        assert await differences(database_url, history("profile")) == []  # no pronouns

    async def test_revision_writes_what_the_models_changed(
        self, tmp_path: Path, database_url: str
    ) -> None:
        profile = history("profile")
        changed = copy_with(profile.metadata, "persons", Column("pronouns", String(40)))
        copy = history_copy(tmp_path, "profile", changed)
        path = await revision(copy, "persons say their pronouns")
        assert path.name == f"r{NEXT_REVISION}_persons_say_their_pronouns.py"
        written = path.read_text()
        head = PROFILE_REVISIONS[-1]
        assert f'down_revision: str | Sequence[str] | None = "{head}"' in written
        assert 'batch_op.add_column(sa.Column("pronouns"' in written
        done = await upgrade(database_url, copy)
        assert done.applied == (*PROFILE_REVISIONS, NEXT_REVISION)
        assert await differences(database_url, copy) == []
