"""The live projector's statements straight on asyncpg: the same rows as SQLAlchemy's path, the
same refusals, and a held connection that PostgreSQL closed is replaced without an outage.

Against real PostgreSQL; SQLite keeps SQLAlchemy's path (`store.SqlTables`).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from backfill_bus import Names
from backfill_projector.pg_tables import PgTables
from backfill_projector.store import SqlTables
from backfill_readmodel.tables import job_events, jobs, workers
from tests.support.databases import end_other_connections
from tests.support.events import append, heartbeat, job_life, running_projector, wait_projected

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.parametrize("database_url", ["postgres"], indirect=True),
]
T0 = datetime(2024, 6, 3, 9, 0, tzinfo=UTC)


def _job(job_id: str, **changed: Any) -> dict[str, Any]:
    row = {
        "job_id": job_id, "source": "sim", "symbol": "PG", "bar_size": "1m", "status": "running",
        "start": T0, "end": T0 + timedelta(days=1), "options": {"latency_ms": 5, "tags": ["a"]},
        "idempotency_key": None, "attempt": 1, "price_type": "trades", "worker_id": "w-1",
        "chunks_total": 3, "chunks_done": 1, "bars_stored": 390, "error_outcome": None,
        "error_message": None, "submitted_at": T0, "started_at": T0 + timedelta(seconds=1),
        "finished_at": None, "updated_at": T0 + timedelta(seconds=2), "last_seq": 3,
        "instrument": None, "note": None, "correlation_id": "c-1", "universe": None,
        "universe_run": None,
    }  # fmt: skip
    return row | changed


async def _on_asyncpg(engine: AsyncEngine, work: Any) -> Any:
    async with engine.connect() as conn:
        driver: Any = (await conn.get_raw_connection()).driver_connection
        async with driver.transaction():
            return await work(PgTables(driver))


async def test_rows_written_on_asyncpg_read_back_as_sqlalchemy_reads_them(
    engine: AsyncEngine,
) -> None:
    paris = T0.astimezone(ZoneInfo("Europe/Paris"))

    async def write(tables: PgTables) -> None:
        await tables.upsert(jobs, [_job("pg-1", submitted_at=paris)], ["job_id"])
        await tables.upsert(jobs, [_job("pg-1", status="succeeded", chunks_done=3)], ["job_id"])
        event = {
            "event_id": "1-0", "job_id": "pg-1", "seq": 1, "attempt": 1, "type": "job.submitted",
            "ts": T0, "producer": "api", "data": {"symbol": "PG"},
        }  # fmt: skip
        await tables.insert_ignore(job_events, [event], ["event_id"])
        await tables.insert_ignore(job_events, [event | {"producer": "other"}], ["event_id"])

    await _on_asyncpg(engine, write)

    async with engine.connect() as conn:
        through_sqlalchemy = await SqlTables(conn).rows_where(jobs, "job_id", {"pg-1"})
        (event_row,) = await SqlTables(conn).rows_where(job_events, "job_id", {"pg-1"})
    (straight,) = await _on_asyncpg(engine, lambda t: t.rows_where(jobs, "job_id", ["pg-1"]))
    (row,) = through_sqlalchemy
    # Upserted: the second write's values; the submission time moved to UTC, not shifted.
    assert dict(row) == _job("pg-1", status="succeeded", chunks_done=3)
    assert row["submitted_at"].tzinfo == UTC
    assert row["submitted_at"] == T0
    assert dict(straight) == dict(row)  # JSON parsed, datetimes aware, as SQLAlchemy's
    assert event_row["producer"] == "api"  # ignored: the first write stays


async def test_a_naive_datetime_is_refused_as_sqlalchemy_refuses_it(engine: AsyncEngine) -> None:
    naive = _job("pg-2", submitted_at=T0.replace(tzinfo=None))
    with pytest.raises(ValueError, match="naive datetime"):
        await _on_asyncpg(engine, lambda t: t.upsert(jobs, [naive], ["job_id"]))
    async with engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(jobs)) == 0


async def test_a_held_connection_the_server_closed_is_replaced_without_an_outage(
    redis: Redis, engine: AsyncEngine, namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    names = Names(namespace)
    async with running_projector(engine, redis, names):
        last = (await append(redis, names, [heartbeat("w-held", T0)]))[-1]
        await wait_projected(engine, names, last)
        assert await end_other_connections(engine) >= 1  # the projector's, and the pool's
        with caplog.at_level(logging.WARNING, logger="backfill_projector"):
            life = job_life("pg-held", T0, "succeeded", chunks=2)
            last = (await append(redis, names, life.events))[-1]
            await wait_projected(engine, names, last, timeout=10)
        assert not [r for r in caplog.records if "paused" in r.getMessage()]
        async with engine.connect() as conn:
            status = await conn.scalar(select(jobs.c.status).where(jobs.c.job_id == "pg-held"))
            beat = await conn.scalar(select(workers.c.state).where(workers.c.worker_id == "w-held"))
        assert (status, beat) == ("succeeded", "idle")
