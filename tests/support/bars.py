"""Writing bars straight into the tables (`series` and `bar_rows`), for tests that set up or
punch holes in what the projector stored. The `bars` view only reads."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Delete, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from backfill_readmodel.tables import bar_rows, series

_NAMES = ("source", "symbol", "bar_size", "price_type")


async def store_bars(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    """Insert bars given as the `bars` view shows them (their series' names included)."""
    ids: dict[tuple[Any, ...], int] = {}
    for row in rows:
        named = {name: row[name] for name in _NAMES}
        key = tuple(named.values())
        if key not in ids:
            found = (await conn.execute(select(series.c.id).filter_by(**named))).scalar()
            if found is None:
                added = await conn.execute(insert(series).values(**named))
                assert added.inserted_primary_key is not None
                found = added.inserted_primary_key[0]
            ids[key] = found
    values = [
        {"series_id": ids[tuple(row[name] for name in _NAMES)]}
        | {k: v for k, v in row.items() if k not in _NAMES}
        for row in rows
    ]
    await conn.execute(insert(bar_rows), values)


def delete_bars(symbol: str, start: datetime, end: datetime) -> Delete:
    """Delete the symbol's bars in [start, end), whatever its source, bar size, price type."""
    of_symbol = select(series.c.id).where(series.c.symbol == symbol)
    return delete(bar_rows).where(
        bar_rows.c.series_id.in_(of_symbol), bar_rows.c.ts >= start, bar_rows.c.ts < end
    )
