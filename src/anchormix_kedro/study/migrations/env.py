"""Alembic's environment for the study database: runs on the connection it is handed
(:func:`anchormix_kedro.study.storage.upgrade_schema`)."""

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
