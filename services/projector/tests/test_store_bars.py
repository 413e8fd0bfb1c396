"""Writing bars: by natural key, in log order, on SQLite and on PostgreSQL's array path."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from backfill_contracts import BarBatch
from backfill_projector import store
from backfill_projector.rows import BarBlock
from backfill_readmodel.tables import bars

T0 = 1_704_067_200  # 2024-01-01 00:00 UTC


def block(
    ts: list[int], close: list[float], *, symbol: str = "AAPL", adj: bool = False
) -> BarBlock:
    batch = BarBatch(
        ts=ts,
        open=close,
        high=[c + 1 for c in close],
        low=[c - 1 for c in close],
        close=close,
        volume=[100.0] * len(ts),
        adj_close=[c / 2 for c in close] if adj else None,
    )
    return BarBlock("sim", symbol, "1m", "trades", batch)


async def stored(engine: AsyncEngine) -> list[tuple[object, ...]]:
    query = select(bars.c.symbol, bars.c.ts, bars.c.close, bars.c.adj_close).order_by(
        bars.c.symbol, bars.c.ts
    )
    async with engine.connect() as conn:
        return [tuple(row) for row in await conn.execute(query)]


def at(minute: int) -> datetime:
    return datetime.fromtimestamp(T0 + 60 * minute, UTC)


async def test_a_later_block_wins_and_a_block_may_repeat_a_time(engine: AsyncEngine) -> None:
    first = block([T0, T0 + 60, T0 + 120], [1.0, 2.0, 3.0])
    # A retried chunk overlapping the first, with a time it repeats (its last value wins).
    second = block([T0 + 120, T0 + 180, T0 + 180], [30.0, 4.0, 40.0], adj=True)
    other = block([T0], [7.0], symbol="MSFT")

    async with engine.begin() as conn:
        await store.write_bars(conn, [first, second, other])

    assert await stored(engine) == [
        ("AAPL", at(0), 1.0, None),
        ("AAPL", at(1), 2.0, None),
        ("AAPL", at(2), 30.0, 15.0),
        ("AAPL", at(3), 40.0, 20.0),
        ("MSFT", at(0), 7.0, None),
    ]


async def test_a_block_out_of_time_order_is_stored_by_time(engine: AsyncEngine) -> None:
    """Sources send bars in time order; a block that is not (a time repeated out of order
    too) is stored the same, its last bar winning for a repeated time."""
    shuffled = block([T0 + 120, T0, T0 + 60, T0, T0 + 180], [3.0, 1.0, 2.0, 10.0, 4.0])
    async with engine.begin() as conn:
        await store.write_bars(conn, [shuffled])
        # Over the stored bars now: the upsert path gets them in order too.
        await store.write_bars(conn, [block([T0 + 60, T0, T0 + 60], [20.0, 11.0, 21.0])])

    assert await stored(engine) == [
        ("AAPL", at(0), 11.0, None),
        ("AAPL", at(1), 21.0, None),
        ("AAPL", at(2), 3.0, None),
        ("AAPL", at(3), 4.0, None),
    ]


def test_block_params_put_a_shuffled_block_in_time_order() -> None:
    shuffled = block([T0 + 120, T0, T0 + 60, T0], [3.0, 1.0, 2.0, 10.0], adj=True)
    params = store.block_params(shuffled)
    ts, opens, *_, adj_close = params[4]
    assert (ts, opens, adj_close) == ([T0, T0 + 60, T0 + 120], [10.0, 2.0, 3.0], [5.0, 1.0, 1.5])
    assert params[5:] == (T0, T0 + 120)
    ordered = block([T0, T0 + 60], [1.0, 2.0])
    assert store.block_params(ordered)[4][0] is ordered.bars.ts  # in order: passed as it is


async def test_writing_the_same_blocks_again_changes_nothing(engine: AsyncEngine) -> None:
    blocks = [block([T0, T0 + 60], [1.0, 2.0]), block([T0 + 60], [5.0])]
    async with engine.begin() as conn:
        await store.write_bars(conn, blocks)
    before = await stored(engine)

    async with engine.begin() as conn:
        await store.write_bars(conn, blocks)
        await store.write_bars(conn, [])  # nothing to write is not an error

    assert before == [("AAPL", at(0), 1.0, None), ("AAPL", at(1), 5.0, None)]
    assert await stored(engine) == before


async def test_a_block_over_stored_bars_updates_them_and_a_block_between_them_inserts(
    engine: AsyncEngine,
) -> None:
    """A block is a plain INSERT on PostgreSQL only while its series holds no bar between its
    first and last time: one reaching over a stored bar is upserted, in another transaction too."""
    async with engine.begin() as conn:
        await store.write_bars(conn, [block([T0 + 60, T0 + 300], [1.0, 5.0])])

    async with engine.begin() as conn:
        await store.write_bars(conn, [block([T0 + 120, T0 + 180], [2.0, 3.0])])  # in between
    async with engine.begin() as conn:
        await store.write_bars(conn, [block([T0, T0 + 60, T0 + 240], [0.5, 1.5, 4.0])])

    assert await stored(engine) == [
        ("AAPL", at(0), 0.5, None),
        ("AAPL", at(1), 1.5, None),
        ("AAPL", at(2), 2.0, None),
        ("AAPL", at(3), 3.0, None),
        ("AAPL", at(4), 4.0, None),
        ("AAPL", at(5), 5.0, None),
    ]
