"""The identity database's schema history: Alembic revisions (see mesh.migrate)."""
