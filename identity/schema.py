"""Creating the provider's tables, and adding columns newer code added to existing ones.

There is no migration tool yet: ``create_all`` creates missing tables, and this adds a
missing column that is nullable or has a server default to an existing table (the only
kinds of change made so far), so a database created by an earlier version keeps working.
"""

from __future__ import annotations

from sqlalchemy import Connection, MetaData, inspect, text
from sqlalchemy.schema import CreateColumn

from identity import models
from mesh.db import Database


def add_missing_columns(conn: Connection, metadata: MetaData) -> list[str]:
    """ALTER TABLE … ADD COLUMN for addable columns the database lacks; returns them."""
    inspector = inspect(conn)
    added = []
    for table in metadata.sorted_tables:
        if not inspector.has_table(table.name):
            continue
        present = {c["name"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            addable = column.nullable or column.server_default is not None
            if column.name not in present and addable:
                spec = CreateColumn(column).compile(dialect=conn.dialect)
                conn.execute(text(f"ALTER TABLE {table.name} ADD COLUMN {spec}"))
                added.append(f"{table.name}.{column.name}")
    return added


async def prepare(db: Database) -> None:
    await db.create_all()
    async with db.engine.begin() as conn:
        await conn.run_sync(add_missing_columns, models.metadata)
