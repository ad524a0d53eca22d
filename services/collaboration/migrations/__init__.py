"""The collaboration database's schema history: Alembic revisions (see mesh.migrate)."""
