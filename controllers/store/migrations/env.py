"""Alembic environment: runs on the connection that ``controllers.store.migrate`` locked for it."""

from __future__ import annotations

from alembic import context

from controllers.store import (  # noqa: F401  (their tables join Base's metadata)
    loop_objects,
    review_models,
)
from controllers.store.models import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
