"""Alembic environment: probe.store.migrate hands over an open connection (holding the migration lock)."""

from alembic import context

from probe.store.schema import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
