"""Alembic's environment, shared by every process's history (see :mod:`mesh.migrate`)."""

from alembic import context

from mesh.migrate import run_environment

run_environment(context)
