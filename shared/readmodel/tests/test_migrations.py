"""The migrations build exactly the tables the code declares, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from backfill_readmodel.tables import metadata


async def test_the_migrated_schema_is_the_declared_one(engine: AsyncEngine) -> None:
    def differences(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        found: list[Any] = compare_metadata(context, metadata)
        return found

    async with engine.connect() as conn:
        assert await conn.run_sync(differences) == []
