"""Databases from before: made by create_all (no version table), or at an earlier revision,
are brought to head with their data."""

from __future__ import annotations

from sqlalchemy import inspect, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from deploy.migrations import history
from identity.store import models as identity_models
from mesh.db import Database
from mesh.migrate import History, State, differences, status, upgrade
from services.profile import models as profile_models
from tests.migrations.conftest import PROFILE_REVISIONS, WHEN, person_row


async def columns(engine: AsyncEngine, table: str) -> set[str]:
    async with engine.connect() as conn:
        return await conn.run_sync(lambda c: {col["name"] for col in inspect(c).get_columns(table)})


class TestCreateAllDatabasesAreAdopted:
    async def test_made_by_this_code_stamped_at_head(
        self, database_url: str, process_history: History
    ) -> None:
        db = Database(database_url, process_history.metadata)
        try:
            await db.create_all()
        finally:
            await db.dispose()
        assert (await status(database_url, process_history)).state is State.UNVERSIONED
        adopted = await upgrade(database_url, process_history)
        assert adopted.adopted and adopted.applied == ()
        assert adopted.state is State.CURRENT
        assert await differences(database_url, process_history) == []

    async def test_made_before_migrations_stamped_at_baseline_data_kept(
        self, database_url: str, engine: AsyncEngine
    ) -> None:
        """The profile schema of the release before migrations had no created_at."""
        profile = history("profile")
        db = Database(database_url, profile.metadata)
        try:
            await db.create_all()
        finally:
            await db.dispose()
        async with engine.begin() as conn:
            for table in ("persons", "companies"):
                await conn.execute(text(f"ALTER TABLE {table} DROP COLUMN created_at"))
                await conn.execute(text(f"ALTER TABLE {table} DROP COLUMN image"))
                await conn.execute(text(f"ALTER TABLE {table} DROP COLUMN allied"))
            for made_later in ("pictures", "connections_across", "mesh_alliances"):
                await conn.execute(text(f"DROP TABLE {made_later}"))
            await conn.execute(text("DROP INDEX ix_search_tier_name"))
            await conn.execute(profile_models.persons.insert().values(**person_row("ada")))
        adopted = await upgrade(database_url, profile)
        assert adopted.adopted and adopted.applied == PROFILE_REVISIONS[1:]
        assert adopted.state is State.CURRENT
        async with engine.connect() as conn:
            row = (await conn.execute(select(profile_models.persons))).one()
        assert (row.name, row.fields) == ("Ada", {"headline": "keeps its data"})
        assert row.created_at.replace(tzinfo=WHEN.tzinfo) == WHEN
        assert await differences(database_url, profile) == []

    async def test_identity_made_by_create_all_keeps_its_rows(
        self, database_url: str, engine: AsyncEngine
    ) -> None:
        identity = history("identity")
        db = Database(database_url, identity.metadata)
        try:
            await db.create_all()
        finally:
            await db.dispose()
        tables = identity_models.metadata.tables
        async with engine.begin() as conn:
            await conn.execute(
                tables["id_ecosystems"].insert().values(slug="acme", name="A", created_at=WHEN)
            )
        adopted = await upgrade(database_url, identity)
        async with engine.connect() as conn:
            eco = (await conn.execute(text("SELECT name FROM id_ecosystems"))).scalar_one()
        assert adopted.adopted and adopted.state is State.CURRENT and eco == "A"
        # the column add_missing_columns used to add is part of the baseline
        assert "dpop_bound_access_tokens" in await columns(engine, "id_clients")


class TestUpgradeFromAnEarlierRevision:
    async def test_baseline_with_rows_upgrades_and_keeps_them(
        self, database_url: str, engine: AsyncEngine
    ) -> None:
        profile = history("profile")
        at_baseline = await upgrade(database_url, profile, "0001")
        assert at_baseline.current == ("0001",) and at_baseline.state is State.BEHIND
        assert "created_at" not in await columns(engine, "persons")
        company = {k: v for k, v in person_row("x").items() if k not in ("person", "partner")}
        async with engine.begin() as conn:
            await conn.execute(profile_models.persons.insert().values(**person_row("ada")))
            await conn.execute(
                profile_models.companies.insert().values(partner="acme-corp", **company)
            )
        done = await upgrade(database_url, profile)
        assert done.applied == PROFILE_REVISIONS[1:] and done.state is State.CURRENT
        async with engine.connect() as conn:
            person = (await conn.execute(select(profile_models.persons))).one()
            firm = (await conn.execute(select(profile_models.companies))).one()
        for row in (person, firm):
            assert row.created_at.replace(tzinfo=WHEN.tzinfo) == WHEN  # backfilled
        assert person.fields == {"headline": "keeps its data"} and firm.name == "X"
        assert await differences(database_url, profile) == []

    async def test_rows_of_a_replica_on_the_previous_release_still_insert(
        self, database_url: str, engine: AsyncEngine
    ) -> None:
        """Expand-safe: the old code's INSERT (no created_at) gets the server default."""
        await upgrade(database_url, history("profile"))
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO persons (eco, person, partner, name, fields, visibility, "
                    "verified, verified_note, updated_at) VALUES ('acme', 'old', 'p', 'Old', "
                    "'{}', '{}', false, '', :at)"
                ),
                {"at": WHEN},
            )
            made = (
                await conn.execute(text("SELECT created_at FROM persons WHERE person = 'old'"))
            ).scalar_one()
        assert made is not None
