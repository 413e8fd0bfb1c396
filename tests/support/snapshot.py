"""Every projection table as plain, ordered rows, to compare two states of the database."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from backfill_readmodel.tables import bars, metadata, series


async def snapshot(engine: AsyncEngine) -> dict[str, list[tuple[Any, ...]]]:
    tables: dict[str, list[tuple[Any, ...]]] = {}
    async with engine.connect() as conn:
        # Bars as the `bars` view shows them: a rebuild may number series anew.
        internal = {series.name, "bar_rows"}
        for table in [*(t for t in metadata.sorted_tables if t.name not in internal), bars]:
            key = list(table.primary_key.columns)
            # A position's token is new with every commit: which commit wrote it is no state.
            columns = [c for c in table.columns if c.name != "written_by"]
            rows = await conn.execute(select(*columns).order_by(*key))
            tables[table.name] = [tuple(row) for row in rows]
    return tables
