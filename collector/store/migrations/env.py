"""Alembic environment: run by ``store/migrate.py`` with a connection already open
(``config.attributes["connection"]``); never from an alembic.ini."""
from alembic import context
from schoolmon.collector.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
