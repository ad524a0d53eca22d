"""A database created before a nullable column was added keeps working: start-up adds it."""

from __future__ import annotations

from sqlalchemy import Column, MetaData, String, Table, inspect

from identity import models, schema
from mesh.db import Database


class TestMissingColumns:
    async def test_added_to_existing_tables_and_idempotent(self, database_url):
        old = MetaData()
        Table("id_ecosystems", old, Column("slug", String(64), primary_key=True))
        db = Database(database_url, old)
        try:
            await db.create_all()
            db.metadata = models.metadata
            await schema.prepare(db)
            await schema.prepare(db)  # nothing left to add the second time
            async with db.engine.connect() as conn:
                names = await conn.run_sync(
                    lambda c: {col["name"] for col in inspect(c).get_columns("id_ecosystems")}
                )
                added = await conn.run_sync(schema.add_missing_columns, models.metadata)
        finally:
            await db.dispose()
        assert {"disabled_at", "default_partner"} <= names and added == []
