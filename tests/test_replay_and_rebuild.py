"""Replaying the log changes nothing, and a rebuild from the log yields identical tables."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from typing import Any

from sqlalchemy import update

from backfill_readmodel.tables import projector_positions
from tests.support.events import wait_projected
from tests.support.snapshot import snapshot
from tests.support.stack import Stack, running_stack

JOB = {
    "source": "sim",
    "symbol": "MSFT",
    "bar_size": "1m",
    "start": "2024-03-04",
    "end": "2024-03-09",
}


async def _run_some_jobs(stack: Stack) -> None:
    ok = await stack.submit(**JOB, options={"fail_every": 3})
    daily = await stack.submit(**{**JOB, "bar_size": "1d", "end": "2024-06-01"})
    bad = await stack.submit(**{**JOB, "symbol": "INVALID"})
    for job_id in (ok, daily, bad):
        await stack.wait_job(job_id)
    # Junk on the event log must not stop anything, and is skipped the same way on replay.
    await stack.redis.xadd(stack.names.events, {"__data__": b"not an event"})
    await _wait_projected(stack)


async def _quiesce(stack: Stack) -> None:
    """Stop the workers (no more heartbeats: the log stays still) and let the projector catch up."""
    for worker in stack.workers:
        await worker.stop()
    stack.workers.clear()
    await _wait_projected(stack)


async def _wait_projected(stack: Stack) -> None:
    newest: Any = await stack.redis.xrevrange(stack.names.events, count=1)
    # At or past the newest entry: until the workers stop, their heartbeats move the position
    # on, and a batch holding the junk entry and a heartbeat never stops at the junk.
    await wait_projected(stack.engine, stack.names, newest[0][0].decode())


async def test_replaying_the_whole_log_changes_nothing(
    redis_url: str, database_url: str, namespace: str
) -> None:
    async with running_stack(redis_url, database_url, namespace) as stack:
        await _run_some_jobs(stack)
        await _quiesce(stack)
        before = await snapshot(stack.engine)
        assert len(before["bars"]) == 5 * 390 + 65
        dlq_before = await stack.redis.xlen(stack.names.dlq)

        # Forget the position: the projector folds every event a second time.
        async with stack.engine.begin() as conn:
            await conn.execute(update(projector_positions).values(last_id="0-0"))
        entries: Any = await stack.redis.xrange(stack.names.events)
        async with stack.engine.begin() as conn:
            await stack.projector.apply(conn, entries, dead_letter_invalid=False)

        assert await snapshot(stack.engine) == before
        assert await stack.redis.xlen(stack.names.dlq) == dlq_before == 1


async def test_rebuild_yields_identical_tables(
    redis_url: str, database_url: str, namespace: str
) -> None:
    async with running_stack(redis_url, database_url, namespace) as stack:
        await _run_some_jobs(stack)
        await _quiesce(stack)
        before = await snapshot(stack.engine)
        assert sum(len(rows) for rows in before.values()) > 2000

        count = await stack.projector.rebuild()
        assert count == await stack.redis.xlen(stack.names.events)
        assert await snapshot(stack.engine) == before


async def test_rebuild_command(redis_url: str, database_url: str, namespace: str) -> None:
    """`backfill-projector rebuild` (run by `backfill projector rebuild`) refills emptied tables."""
    async with running_stack(redis_url, database_url, namespace) as stack:
        await _run_some_jobs(stack)
        await _quiesce(stack)
        before = await snapshot(stack.engine)
        async with stack.engine.begin() as conn:
            for table in ("bar_rows", "series", "jobs", "job_chunks"):
                await conn.exec_driver_sql(f"DELETE FROM {table}")
        assert (await snapshot(stack.engine))["bars"] == []

        env = {
            **os.environ,
            "BACKFILL_REDIS_URL": redis_url,
            "BACKFILL_REDIS_NAMESPACE": namespace,
            "BACKFILL_DATABASE_URL": database_url,
        }
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "backfill_projector", "rebuild",
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=120)
        assert process.returncode == 0, stderr.decode()
        events = await stack.redis.xlen(stack.names.events)
        assert f"rebuilt every projection from {events} events" in stdout.decode()
        assert await snapshot(stack.engine) == before
