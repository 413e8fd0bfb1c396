"""The projector folds a running job onto the rows it committed last, and reads the tables again
whenever those rows may no longer be what the tables hold.

Statements are seen as the database driver receives them: SQLAlchemy's cursor events, and on
PostgreSQL asyncpg's query loggers too (the projector runs its statements straight on asyncpg), on
each connection checked out meanwhile.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncEngine

from backfill_bus import Names, ensure_events_group
from backfill_projector.projector import Projector
from backfill_readmodel.tables import job_chunks, jobs
from tests.support.events import (
    JobLife,
    append,
    job_life,
    position,
    running_projector,
    wait_projected,
)
from tests.support.stack import wait_until

T0 = datetime(2024, 6, 3, 9, 0, tzinfo=UTC)
_READS = re.compile(r"^\s*SELECT\b.*\bFROM (jobs|job_chunks)\b", re.IGNORECASE | re.DOTALL)


@contextmanager
def reads_of_job_rows(engine: AsyncEngine) -> Iterator[list[str]]:
    """The tables (`jobs`, `job_chunks`) of every SELECT of job rows sent meanwhile."""
    seen: list[str] = []
    logged: list[Any] = []  # the asyncpg connections given a query logger

    def note(statement: str) -> None:
        if match := _READS.match(statement):
            seen.append(match.group(1))

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        note(statement)

    def record_query(query: Any) -> None:
        note(query.query)

    def log_queries(dbapi_connection: Any, *_args: Any) -> None:
        driver: Any = getattr(dbapi_connection, "driver_connection", None)
        if hasattr(driver, "add_query_logger"):
            driver.add_query_logger(record_query)
            logged.append(driver)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    event.listen(engine.sync_engine, "checkout", log_queries)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "checkout", log_queries)
        event.remove(engine.sync_engine, "before_cursor_execute", record)
        for driver in logged:
            driver.remove_query_logger(record_query)


async def fold(projector: Projector, engine: AsyncEngine, events: list[Any]) -> None:
    """Append `events` and step `projector` until it has folded them (no background task)."""
    last = (await append(projector.redis, projector.names, events))[-1]

    async def folded() -> bool:
        await projector.step()
        return await position(engine, projector.names) == last

    await wait_until(folded, 20, f"folded up to {last}")


async def _assert_succeeded(engine: AsyncEngine, life: JobLife) -> None:
    """The job's row and chunk rows as its events say, each chunk folded exactly once."""
    async with engine.connect() as conn:
        job = (
            (await conn.execute(select(jobs).where(jobs.c.job_id == life.job_id))).mappings().one()
        )
        chunks = await conn.execute(
            select(job_chunks.c.chunk, job_chunks.c.status, job_chunks.c.tries)
            .where(job_chunks.c.job_id == life.job_id)
            .order_by(job_chunks.c.chunk)
        )
        stored = [tuple(chunk) for chunk in chunks]
    assert (job["status"], job["chunks_done"], job["bars_stored"]) == ("succeeded", 3, 12)
    assert stored == [(0, "done", 1), (1, "done", 1), (2, "done", 1)]


def _life(job_id: str) -> JobLife:
    return job_life(job_id, T0, "succeeded", chunks=3)


async def test_a_running_job_is_folded_without_reading_its_rows_again(
    redis: Redis, engine: AsyncEngine, namespace: str
) -> None:
    names = Names(namespace)
    await ensure_events_group(redis, names)
    projector = Projector(engine, redis, names, block_ms=50)
    life = _life("known-1")
    submitted, started, *chunks, succeeded = life.events

    with reads_of_job_rows(engine) as reads:
        await fold(projector, engine, [submitted])
    assert reads == ["jobs"]  # a job nobody knows: no chunks to look for

    await fold(projector, engine, [started])
    with reads_of_job_rows(engine) as reads:
        await fold(projector, engine, [*chunks, succeeded])
    assert reads == []  # the rows of the last commit, still the tables' own

    await _assert_succeeded(engine, life)


async def test_a_commit_by_someone_else_makes_it_read_the_tables_again(
    redis: Redis, engine: AsyncEngine, namespace: str
) -> None:
    """Another projector (a second replica, a rebuild) folds a chunk between two batches: the
    first one's remembered rows miss it, so they must not be written back."""
    names = Names(namespace)
    await ensure_events_group(redis, names)
    first = Projector(engine, redis, names, block_ms=50)
    other = Projector(engine, redis, names, block_ms=50)
    life = _life("known-2")
    submitted, started, chunk0, chunk1, chunk2, succeeded = life.events

    await fold(first, engine, [submitted, started])
    await fold(other, engine, [chunk0])
    with reads_of_job_rows(engine) as reads:
        await fold(first, engine, [chunk1])
    assert reads == ["jobs", "job_chunks"]
    await fold(first, engine, [chunk2, succeeded])

    await _assert_succeeded(engine, life)


async def test_a_batch_that_failed_halfway_is_folded_again_from_the_tables(
    redis: Redis, engine: AsyncEngine, namespace: str
) -> None:
    """Folding changes the remembered rows in place; the write then fails (an outage), so
    the retry must start from the tables, not from rows that already took the event."""
    names = Names(namespace)
    life = _life("known-3")
    submitted, started, chunk0, *rest = life.events

    async with running_projector(engine, redis, names):
        last = (await append(redis, names, [submitted, started]))[-1]
        await wait_projected(engine, names, last)
        async with refused_writes(engine):
            with reads_of_job_rows(engine) as reads:
                await append(redis, names, [chunk0])
                # With the rows remembered, only a retry from scratch reads the job again.
                await wait_until(lambda: _read(reads), 20, "the batch retried from the tables")
        last = (await append(redis, names, rest))[-1]
        await wait_projected(engine, names, last)

    await _assert_succeeded(engine, life)


async def _read(reads: list[str]) -> bool:
    return "jobs" in reads


@asynccontextmanager
async def refused_writes(engine: AsyncEngine) -> AsyncIterator[None]:
    """Every insert into job_events fails as an unavailable server's would (an outage)."""
    if engine.dialect.name == "postgresql":
        create = [
            "CREATE FUNCTION refuse_write() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            " RAISE EXCEPTION 'not now' USING ERRCODE = '57P03'; END $$",
            "CREATE TRIGGER refuse_write BEFORE INSERT ON job_events"
            " FOR EACH STATEMENT EXECUTE FUNCTION refuse_write()",
        ]
        drop = ["DROP TRIGGER refuse_write ON job_events", "DROP FUNCTION refuse_write()"]
    else:
        create = [
            "CREATE TRIGGER refuse_write BEFORE INSERT ON job_events"
            " BEGIN SELECT RAISE(ABORT, 'database is locked'); END"
        ]
        drop = ["DROP TRIGGER refuse_write"]
    async with engine.begin() as conn:
        for statement in create:
            await conn.exec_driver_sql(statement)
    try:
        yield
    finally:
        async with engine.begin() as conn:
            for statement in drop:
                await conn.exec_driver_sql(statement)
