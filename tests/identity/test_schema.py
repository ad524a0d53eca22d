"""A database created before a column was added keeps working: start-up adds it."""

from __future__ import annotations

from sqlalchemy import Column, MetaData, String, Table, inspect, text

from identity import models, schema
from mesh.db import Database


class TestMissingColumns:
    async def test_added_to_existing_tables_and_idempotent(self, database_url):
        old = MetaData()
        Table("id_ecosystems", old, Column("slug", String(64), primary_key=True))
        clients = Table(
            "id_clients",
            old,
            Column("eco", String(64), primary_key=True),
            Column("client_id", String(120), primary_key=True),
        )
        db = Database(database_url, old)
        try:
            await db.create_all()
            async with db.engine.begin() as conn:
                await conn.execute(clients.insert().values(eco="acme", client_id="old"))
            db.metadata = models.metadata
            await schema.prepare(db)
            await schema.prepare(db)  # nothing left to add the second time
            async with db.engine.connect() as conn:
                names = await conn.run_sync(
                    lambda c: {col["name"] for col in inspect(c).get_columns("id_ecosystems")}
                )
                added = await conn.run_sync(schema.add_missing_columns, models.metadata)
                # A NOT NULL column with a server default is added too; old rows get it.
                bound = (
                    await conn.execute(
                        text("SELECT dpop_bound_access_tokens FROM id_clients WHERE eco = 'acme'")
                    )
                ).scalar_one()
        finally:
            await db.dispose()
        assert {"disabled_at", "default_partner"} <= names and added == []
        assert bound in (False, 0)
