"""Alembic environment: runs on the connection handed over by ``kpr_pipeline.warehouse.migrate``."""

from alembic import context

from kpr_pipeline.warehouse.migrate import VERSION_TABLE

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=None, version_table=VERSION_TABLE)
with context.begin_transaction():
    context.run_migrations()
