"""Alembic environment: migrate the connection that relay.store hands over.

There is no alembic.ini: :meth:`relay.store.Store.migrate` builds the
configuration in code and passes an open connection in
``config.attributes["connection"]``. Offline (SQL script) mode is not used.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection


def _run() -> None:
    connection = context.config.attributes.get("connection")
    if not isinstance(connection, Connection):
        raise RuntimeError("run migrations through relay.store.Store.migrate()")
    # Batch mode lets later revisions alter SQLite tables (copy and move).
    context.configure(connection=connection, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise RuntimeError("offline migrations are not supported; the relay migrates at start-up")
_run()
