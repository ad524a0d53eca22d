"""The connector database's schema history: Alembic revisions (see mesh.migrate)."""
