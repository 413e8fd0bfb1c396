"""Every projection table as plain, ordered rows, to compare two states of the database."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from backfill_readmodel.tables import metadata


async def snapshot(engine: AsyncEngine) -> dict[str, list[tuple[Any, ...]]]:
    tables: dict[str, list[tuple[Any, ...]]] = {}
    async with engine.connect() as conn:
        for table in metadata.sorted_tables:
            key = list(table.primary_key.columns)
            rows = await conn.execute(select(table).order_by(*key))
            tables[table.name] = [tuple(row) for row in rows]
    return tables
