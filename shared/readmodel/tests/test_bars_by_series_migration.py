"""Migration 0008 moves stored bars under series ids and back, losing nothing, on SQLite and
PostgreSQL; the `bars` view reads what the old table held."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from alembic import command
from sqlalchemy import Connection, insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from backfill_readmodel.migrate import alembic_config, upgrade
from backfill_readmodel.tables import bars


def _old_rows() -> list[dict[str, Any]]:
    start = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
    rows = []
    for symbol, bar_size, price_type, count in (
        ("AAPL", "1m", "trades", 3),
        ("AAPL", "1m", "adjusted_last", 2),
        ("MSFT", "1d", "trades", 2),
    ):
        for n in range(count):
            rows.append(
                {
                    "source": "sim",
                    "symbol": symbol,
                    "bar_size": bar_size,
                    "price_type": price_type,
                    "ts": start + timedelta(minutes=n),
                    "open": 1.5 + n,
                    "high": 2.0,
                    "low": 1.0,
                    "close": 0.1 + 0.2,
                    "volume": 10.0 * n,
                    "adj_close": None if n else 1.25,
                }
            )
    return rows


async def _bars(engine: AsyncEngine) -> list[tuple[Any, ...]]:
    """The old table's rows, or the view's: `bars` has the same columns either way."""
    async with engine.connect() as conn:
        found = await conn.execute(select(bars).order_by(*bars.primary_key.columns))
        return [tuple(row) for row in found]


async def _downgrade(engine: AsyncEngine, revision: str) -> None:
    def run(connection: Connection) -> None:
        command.downgrade(alembic_config(connection), revision)

    async with engine.begin() as conn:
        await conn.run_sync(run)


async def test_stored_bars_move_under_series_ids_and_back(engine: AsyncEngine) -> None:
    await _downgrade(engine, "0007")
    async with engine.begin() as conn:
        await conn.execute(insert(bars), _old_rows())  # the table before 0008
    before = await _bars(engine)
    assert len(before) == 7

    await upgrade(engine)

    assert await _bars(engine) == before
    async with engine.connect() as conn:
        named = await conn.execute(
            text("SELECT source, symbol, bar_size, price_type FROM series ORDER BY id")
        )
        assert [tuple(row) for row in named] == [
            ("sim", "AAPL", "1m", "adjusted_last"),
            ("sim", "AAPL", "1m", "trades"),
            ("sim", "MSFT", "1d", "trades"),
        ]
        stored = await conn.execute(text("SELECT count(*) FROM bar_rows"))
        assert stored.scalar_one() == 7

    await _downgrade(engine, "0007")

    assert await _bars(engine) == before
    await upgrade(engine)  # the fixture's database ends at head, as the others
