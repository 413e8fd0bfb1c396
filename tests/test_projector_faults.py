"""The projector rides out a database outage and a Redis restart, and still stops on a bug.

Each test appends a log with known results, takes a server away while the projector runs,
brings it back, and checks the tables row for row: nothing lost, nothing counted twice.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from redis.asyncio import Redis
from sqlalchemy import event, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from backfill_bus import EVENTS_GROUP, Names
from backfill_projector.projector import Projector
from backfill_readmodel.engine import create_engine
from backfill_readmodel.tables import bars, job_chunks, job_events, jobs, workers
from tests.support.events import (
    Ending,
    JobLife,
    all_events,
    append,
    count,
    heartbeat,
    job_life,
    running,
)
from tests.support.events import wait_projected as _wait_projected
from tests.support.proxy import TcpProxy
from tests.support.servers import RedisServer
from tests.support.stack import wait_until

LOGGER = "backfill_projector.projector"
T0 = datetime(2024, 6, 3, 9, 0, tzinfo=UTC)


def _lives(prefix: str, n: int) -> list[JobLife]:
    endings: list[Ending] = ["succeeded", "failed", "running"]
    return [
        job_life(f"{prefix}-{i}", T0 + timedelta(minutes=i), endings[i % 3], chunks=2 + i % 2)
        for i in range(n)
    ]


async def _assert_tables(engine: AsyncEngine, lives: list[JobLife], heartbeats: int) -> None:
    """Exactly these jobs, with exact counts: nothing lost, nothing folded twice."""
    async with engine.connect() as conn:
        rows = (await conn.execute(select(jobs).order_by(jobs.c.job_id))).mappings().all()
        chunk_tries = (await conn.execute(select(job_chunks.c.tries))).scalars().all()
    expected = sorted(lives, key=lambda life: life.job_id)
    assert [(r["job_id"], r["status"], r["chunks_done"], r["bars_stored"]) for r in rows] == [
        (life.job_id, life.status, life.chunks, life.bars) for life in expected
    ]
    assert chunk_tries == [1] * sum(life.chunks for life in lives)
    assert await count(engine, job_events) == sum(len(life.events) for life in lives)
    assert await count(engine, bars) == sum(life.bars for life in lives)
    assert await count(engine, workers) == heartbeats


def _records(caplog: pytest.LogCaptureFixture, level: int, text: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == LOGGER and r.levelno == level and text in r.getMessage()
    ]


# --- the database goes away ---------------------------------------------------------------------


Outage = tuple[AsyncEngine, Callable[[], Awaitable[None]], Callable[[], Awaitable[None]]]


@asynccontextmanager
async def _database_outage(database_url: str) -> AsyncIterator[Outage]:
    """The projector's engine, and how to take its database away and give it back.

    PostgreSQL: through a TCP proxy that resets the open connections and refuses new ones.
    SQLite has no server to lose: another connection holds the write lock, so every write
    fails with "database is locked" (after a short busy timeout) until it lets go.
    """
    if make_url(database_url).get_backend_name() == "postgresql":
        target = make_url(database_url)
        proxy = TcpProxy(target.host or "127.0.0.1", target.port or 5432)
        await proxy.up()
        url = target.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        engine = create_engine(url)
        try:
            yield engine, proxy.down, proxy.up
        finally:
            await engine.dispose()
            await proxy.close()
        return

    path = make_url(database_url).database
    assert path is not None
    engine = create_engine(database_url)

    @event.listens_for(engine.sync_engine, "connect")
    def _short_busy_timeout(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.cursor().execute("PRAGMA busy_timeout=100")  # not 10 s per try

    holder: list[sqlite3.Connection] = []

    def take_lock() -> None:
        conn = sqlite3.connect(path, isolation_level=None, timeout=10, check_same_thread=False)
        conn.execute("BEGIN EXCLUSIVE")  # waits for a write in flight: off the event loop
        holder.append(conn)

    async def lock() -> None:
        await asyncio.to_thread(take_lock)

    async def unlock() -> None:
        conn = holder.pop()
        conn.execute("COMMIT")
        conn.close()

    try:
        yield engine, lock, unlock
    finally:
        for conn in holder:
            conn.close()
        await engine.dispose()


async def test_the_projector_rides_out_a_database_outage(
    redis: Redis, database_url: str, namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    names = Names(namespace)
    before, during = _lives("before", 4), _lives("during", 5)
    async with _database_outage(database_url) as (engine, take_away, give_back):
        projector = Projector(engine, redis, names, block_ms=50, batch_size=7)
        async with running(projector) as task:
            ids = await append(redis, names, all_events(*before, heartbeat("w-1", T0)))
            await _wait_projected(engine, names, ids[-1])

            await take_away()
            ids = await append(redis, names, all_events(*during, heartbeat("w-2", T0)))

            async def retried_twice() -> bool:
                return len(_records(caplog, logging.DEBUG, "still unavailable")) >= 2

            await wait_until(retried_twice, 30, "two retries during the outage")
            assert not task.done()
            await give_back()
            await _wait_projected(engine, names, ids[-1], timeout=60)

        await _assert_tables(engine, before + during, heartbeats=2)
    warnings = _records(caplog, logging.WARNING, "")
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith("projector paused: the database is unavailable (")
    assert warnings[0].endswith("retrying with backoff up to 30 s")
    assert (
        len(_records(caplog, logging.INFO, "projector resumed: the database is available again"))
        == 1
    )
    assert (await redis.xpending(names.events, EVENTS_GROUP))["pending"] == 0


async def test_the_projector_survives_a_cut_in_the_middle_of_batches(
    redis: Redis, database_url: str, namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Cuts while batches are in flight: each batch commits whole or not at all."""
    if make_url(database_url).get_backend_name() != "postgresql":
        pytest.skip("cutting connections mid-transaction needs a server (the TCP proxy)")
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    names = Names(namespace)
    lives = _lives("cut", 30)
    async with _database_outage(database_url) as (engine, take_away, give_back):
        projector = Projector(engine, redis, names, block_ms=50, batch_size=3)
        async with running(projector):
            ids = await append(redis, names, all_events(*lives))
            for _ in range(5):  # cut wherever the projector happens to be
                await take_away()
                await asyncio.sleep(0.05)
                await give_back()
                await asyncio.sleep(0.3)
            await _wait_projected(engine, names, ids[-1], timeout=90)
        await _assert_tables(engine, lives, heartbeats=0)


# --- Redis restarts -----------------------------------------------------------------------------


async def test_the_projector_catches_up_after_a_redis_restart(
    database_url: str, engine: AsyncEngine, namespace: str, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    server = RedisServer(tmp_path / "redis")
    server.start()
    names = Names(namespace)
    redis = Redis.from_url(server.url)
    writer = Redis.from_url(server.url)
    before, after = _lives("before", 4), _lives("after", 4)
    try:
        async with running(Projector(engine, redis, names, block_ms=50)) as task:
            ids = await append(writer, names, all_events(*before))
            await _wait_projected(engine, names, ids[-1])

            await asyncio.to_thread(server.stop)

            async def noticed() -> bool:
                return len(_records(caplog, logging.DEBUG, "still unavailable")) >= 1

            await wait_until(noticed, 30, "the projector noticed Redis is gone")
            assert not task.done()
            await asyncio.to_thread(server.start)  # same port, same data (AOF)
            await writer.connection_pool.disconnect()  # the test's own client reconnects
            ids = await append(writer, names, all_events(*after, heartbeat("w-1", T0)))
            await _wait_projected(engine, names, ids[-1], timeout=60)

        await _assert_tables(engine, before + after, heartbeats=1)
        assert await writer.xlen(names.events) == sum(len(x.events) for x in before + after) + 1
        assert (await writer.xpending(names.events, EVENTS_GROUP))["pending"] == 0
        warnings = _records(caplog, logging.WARNING, "")
        assert len(warnings) == 1, warnings
        assert warnings[0].startswith("projector paused: Redis is unavailable (")
    finally:
        await redis.aclose()
        await writer.aclose()
        server.stop()


async def test_the_projector_recreates_its_group_when_redis_lost_it(
    redis: Redis, engine: AsyncEngine, namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A Redis back without its data (no AOF): the group is ensured again, nothing crashes."""
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    names = Names(namespace)
    first, second = _lives("first", 2), _lives("second", 2)
    async with running(Projector(engine, redis, names, block_ms=50)) as task:
        ids = await append(redis, names, all_events(*first))
        await _wait_projected(engine, names, ids[-1])
        await redis.xgroup_destroy(names.events, EVENTS_GROUP)

        async def noticed() -> bool:
            return len(_records(caplog, logging.WARNING, "Redis is unavailable")) == 1

        await wait_until(noticed, 30, "the projector noticed its group is gone")
        ids = await append(redis, names, all_events(*second))
        await _wait_projected(engine, names, ids[-1], timeout=30)
        assert not task.done()
    # The group came back at the start of the log: the position skipped what was folded.
    await _assert_tables(engine, first + second, heartbeats=0)


# --- a bug still stops it ----------------------------------------------------------------------


async def test_a_bug_stops_the_projector_loudly(
    redis: Redis, engine: AsyncEngine, namespace: str
) -> None:
    names = Names(namespace)
    async with engine.begin() as conn:
        await conn.exec_driver_sql("DROP TABLE job_events")  # a schema the code does not expect
    await append(redis, names, all_events(*_lives("bug", 1)))
    stop = asyncio.Event()
    # Through SQLAlchemy on SQLite; straight from asyncpg on PostgreSQL (see pg_tables).
    with pytest.raises((DBAPIError, asyncpg.PostgresError)) as raised:
        await asyncio.wait_for(Projector(engine, redis, names, block_ms=50).run(stop), 30)
    assert "job_events" in str(raised.value)
