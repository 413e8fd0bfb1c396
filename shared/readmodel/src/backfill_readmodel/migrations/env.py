"""Alembic environment: migrations run on a connection handed over by backfill_readmodel.migrate."""

from __future__ import annotations

from alembic import context

from backfill_readmodel.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "run migrations with `python -m backfill_readmodel upgrade` (it supplies the connection)"
    )
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
