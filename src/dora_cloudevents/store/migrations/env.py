"""Alembic environment: always run with a connection handed over by ``store.migrate``."""

from alembic import context

from dora_cloudevents.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
