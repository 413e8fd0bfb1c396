"""What a series' earlier jobs covered is found through ix_jobs_series, statistics or not.

Each `full` job asks this before it starts (`anything_known`). Without the index PostgreSQL,
on a table not yet analyzed, filtered every job of the source: 0.61 ms per ask in issue #9's
A2, growing with the table; through it, one probe (0.03 ms).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from backfill_contracts import BarSize
from backfill_readmodel.coverage import Series
from backfill_readmodel.coverage.store import anything_known, known_params
from backfill_readmodel.tables import job_chunks, jobs

DAY = datetime(2024, 1, 2, tzinfo=UTC)
NEXT = datetime(2024, 1, 3, tzinfo=UTC)


def _job(n: int, symbol: str, instrument: str | None = None) -> dict[str, object]:
    return {
        "job_id": f"job-{n}", "source": "sim", "symbol": symbol, "bar_size": "1m",
        "start": DAY, "end": NEXT, "options": {}, "status": "succeeded", "attempt": 1,
        "price_type": "trades", "chunks_total": 1, "chunks_done": 1, "bars_stored": 390,
        "submitted_at": DAY, "updated_at": DAY, "last_seq": 5, "instrument": instrument,
    }  # fmt: skip


def _chunk(n: int) -> dict[str, object]:
    return {
        "job_id": f"job-{n}", "chunk": 0, "start": DAY, "end": NEXT, "status": "done",
        "bars": 390, "tries": 1, "last_seq": 4,
    }  # fmt: skip


async def _known(engine: AsyncEngine, symbol: str) -> bool:
    series = Series("sim", symbol, BarSize("1m"), "trades")
    params = known_params(series, int(DAY.timestamp()), int(NEXT.timestamp()))
    async with engine.connect() as conn:
        return bool(await conn.scalar(select(anything_known()), params))


async def test_a_series_is_known_by_its_instrument_else_its_symbol(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(insert(jobs), [_job(1, "PLAIN"), _job(2, "ES", "ESH4")])
        await conn.execute(insert(job_chunks), [_chunk(1), _chunk(2)])
    assert await _known(engine, "PLAIN")
    assert await _known(engine, "ESH4")  # a future's jobs fill its local symbol's series
    assert not await _known(engine, "ES")  # not the generic symbol the job was asked for
    assert not await _known(engine, "OTHER")


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_the_ask_probes_the_index_on_a_table_without_statistics(
    engine: AsyncEngine,
) -> None:
    async with engine.begin() as conn:  # one source's jobs, no ANALYZE since
        await conn.execute(insert(jobs), [_job(n, f"S{n:04d}") for n in range(2000)])
        await conn.execute(insert(job_chunks), [_chunk(n) for n in range(2000)])
    series = Series("sim", "S0999", BarSize("1m"), "trades")
    params = known_params(series, int(DAY.timestamp()), int(NEXT.timestamp()))
    compiled = select(anything_known()).compile(dialect=engine.dialect)
    args = [params[name] for name in compiled.positiontup or []]
    async with engine.connect() as conn:
        driver = (await conn.get_raw_connection()).driver_connection
        assert driver is not None
        rows = await driver.fetch(f"EXPLAIN ANALYZE {compiled.string}", *args)
    plan = "\n".join(row[0] for row in rows)
    assert "ix_jobs_series" in plan, plan
    assert "Rows Removed by Filter" not in plan, plan
