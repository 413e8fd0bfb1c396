"""Direct reads on asyncpg: the same answers as SQLAlchemy's, and a connection that heals.

Against real PostgreSQL; SQLite gets no direct reads (its engines keep SQLAlchemy's path).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import bindparam, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from backfill_readmodel.direct import DirectReadError, DirectReads
from backfill_readmodel.engine import create_engine
from backfill_readmodel.tables import jobs

STARTED = select(jobs.c.started_at, func.count().over()).where(jobs.c.job_id == bindparam("job_id"))


async def _add_job(engine: AsyncEngine, job_id: str, started: datetime | None) -> None:
    row = {
        "job_id": job_id, "source": "sim", "symbol": "DR", "bar_size": "1m", "status": "running",
        "start": datetime(2024, 1, 2, tzinfo=UTC), "end": datetime(2024, 1, 3, tzinfo=UTC),
        "options": {}, "attempt": 1, "chunks_total": 1, "chunks_done": 0, "bars_stored": 0,
        "submitted_at": datetime(2024, 1, 1, tzinfo=UTC), "started_at": started,
        "updated_at": datetime(2024, 1, 1, tzinfo=UTC), "last_seq": 1,
    }  # fmt: skip
    async with engine.begin() as conn:
        await conn.execute(insert(jobs).values(**row))


async def _backend_pid(direct: DirectReads) -> int:
    row = await direct.fetchrow(select(func.pg_backend_pid()), {})
    return int(row[0])


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_direct_reads_answer_as_sqlalchemy_does_and_survive_a_killed_connection(
    engine: AsyncEngine,
) -> None:
    started = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
    await _add_job(engine, "job-a", started)
    direct = DirectReads.of(engine)
    assert direct is not None
    try:
        row = await direct.fetchrow(STARTED, {"job_id": "job-a"})
        assert (row[0], row[1]) == (started, 1)
        assert await direct.fetchrow(STARTED, {"job_id": "nobody"}) is None
        async with engine.connect() as conn:
            assert (await conn.execute(STARTED, {"job_id": "job-a"})).one() == (started, 1)

        # One connection, held: every read so far ran on it.
        pid = await _backend_pid(direct)
        assert await _backend_pid(direct) == pid
        # PostgreSQL drops it (a restart, an admin): the next read reconnects and answers.
        async with engine.connect() as conn:
            killed = await conn.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        assert killed is True
        row = await direct.fetchrow(STARTED, {"job_id": "job-a"})
        assert row[0] == started
        assert await _backend_pid(direct) != pid

        # A statement's own error is reported, and the connection stays usable.
        broken = select(func.to_timestamp(bindparam("when")) / 0)
        with pytest.raises(DirectReadError, match="operator does not exist"):
            await direct.fetchrow(broken, {"when": 1})
        assert (await direct.fetchrow(STARTED, {"job_id": "job-a"}))[0] == started
    finally:
        await direct.close()


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_a_database_that_cannot_be_reached_is_a_clear_error(engine: AsyncEngine) -> None:
    unreachable = create_engine(
        engine.url.set(port=1).render_as_string(hide_password=False),
        connect_args={"timeout": 2},
    )
    direct = DirectReads.of(unreachable)
    assert direct is not None
    try:
        with pytest.raises(DirectReadError, match=r"\S"):
            await direct.fetchrow(STARTED, {"job_id": "job-a"})
    finally:
        await direct.close()
        await unreachable.dispose()


def test_sqlite_engines_keep_the_sqlalchemy_path() -> None:
    assert DirectReads.of(create_engine("sqlite+aiosqlite:///:memory:")) is None
    assert DirectReads.of(None) is None
