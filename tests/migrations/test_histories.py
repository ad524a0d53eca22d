"""Every process's migrations build exactly the schema its models describe, on each engine."""

from __future__ import annotations

import re
from pathlib import Path

import setuptools
from sqlalchemy import Column, String

from deploy.migrations import PROCESSES, history
from mesh.migrate import History, State, differences, upgrade
from tests.migrations.conftest import copy_with

ROOT = Path(__file__).resolve().parents[2]


class TestModelsAndMigrationsAgree:
    async def test_head_is_what_the_models_describe(self, process_history, database_url):
        status = await upgrade(database_url, process_history)
        revisions = [r.revision for r in process_history.script().walk_revisions()]
        assert status.state is State.CURRENT
        assert list(status.applied) == list(reversed(revisions))
        assert await differences(database_url, process_history) == []

    async def test_a_model_change_without_its_migration_is_found(self, database_url):
        profile = history("profile")
        changed = copy_with(profile.metadata, "persons", Column("pronouns", String(40)))
        drifted = History("profile", changed, profile.directory, unmanaged=profile.unmanaged)
        await upgrade(database_url, profile)
        diffs = await differences(database_url, drifted)
        assert [(d[0], d[2], d[3].name) for d in diffs] == [("add_column", "persons", "pronouns")]

    async def test_a_second_upgrade_changes_nothing(self, database_url):
        profile = history("profile")
        await upgrade(database_url, profile)
        again = await upgrade(database_url, profile)
        assert again.state is State.CURRENT and again.applied == () and not again.adopted


class TestHistoriesShape:
    def test_one_linear_history_per_process(self, process_history):
        script = process_history.script()
        assert len(script.get_heads()) == 1, "two heads: rebase the newer revision on the other"
        revisions = list(script.walk_revisions())
        assert [r.revision for r in reversed(revisions)] == [
            f"{n:04d}" for n in range(1, len(revisions) + 1)
        ]
        for rev in revisions:
            assert re.fullmatch(rf"r{rev.revision}_\w+\.py", Path(rev.path).name)

    def test_each_process_owns_one_history(self):
        histories = [history(name) for name in PROCESSES]
        assert [h.name for h in histories] == list(PROCESSES)
        assert len({h.directory for h in histories}) == len(histories)
        assert len({h.lock_key for h in histories}) == len(histories)

    def test_the_kit_tables_are_part_of_each_schema(self):
        for name in PROCESSES:
            tables = set(history(name).metadata.tables)
            assert ("mesh_outbox" in tables) is (name != "portal"), name
            assert ("mesh_inbox" in tables) is (name not in ("portal", "identity")), name

    def test_the_wheel_ships_every_history(self):
        found = setuptools.find_packages(
            str(ROOT),
            include=["contracts*", "mesh*", "identity*", "gateway*", "services*", "portal*"],
        )
        for name in PROCESSES:
            package = ".".join(history(name).directory.relative_to(ROOT).parts)
            assert package in found, package
        assert "mesh.migrations" in found  # env.py; script.py.mako is package data (*.mako)
