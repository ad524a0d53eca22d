"""The portal database's schema history: Alembic revisions (see mesh.migrate)."""
