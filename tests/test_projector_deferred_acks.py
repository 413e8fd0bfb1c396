"""On PostgreSQL the live projector commits without waiting for the disk, and acks an entry only
once a later commit did wait: a crash that loses such commits loses no event.

Against real PostgreSQL. A crash cannot be staged on demand, so its effect is: the tables lose
what the last commits wrote, and the projector's connection breaks.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from backfill_bus import EVENTS_GROUP, Names, ensure_events_group
from backfill_projector.projector import Projector
from backfill_readmodel.tables import bar_rows, job_chunks, job_events, jobs
from tests.support.databases import end_other_connections
from tests.support.events import append, job_life, position, running_projector, wait_projected
from tests.support.stack import wait_until

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.parametrize("database_url", ["postgres"], indirect=True),
]
T0 = datetime(2024, 6, 3, 9, 0, tzinfo=UTC)
# What it does to the tables, when the commits it loses are all there ever were.
_LOSE_EVERY_COMMIT = [
    "DELETE FROM job_events",
    "DELETE FROM job_chunks",
    "DELETE FROM jobs",
    "DELETE FROM bar_rows",
    "DELETE FROM projector_positions",
]


async def _pending(redis: Redis, names: Names) -> int:
    summary: Any = await redis.xpending(names.events, EVENTS_GROUP)
    return int(summary["pending"])


async def _job_state(engine: AsyncEngine, job_id: str) -> tuple[Any, ...]:
    async with engine.connect() as conn:
        status = await conn.scalar(select(jobs.c.status).where(jobs.c.job_id == job_id))
        chunks = await conn.scalar(select(func.count()).select_from(job_chunks))
        history = await conn.scalar(select(func.count()).select_from(job_events))
        stored = await conn.scalar(select(func.count()).select_from(bar_rows))
    return status, chunks, history, stored


@contextlib.asynccontextmanager
async def _live(engine: AsyncEngine, redis: Redis, names: Names) -> AsyncIterator[Projector]:
    """A projector taking its steps as `run` does, by hand."""
    await ensure_events_group(redis, names)
    projector = Projector(engine, redis, names, block_ms=50)
    async with projector.live():
        assert await projector.step() == 0  # its pending entries first, as after a start: none
        yield projector


async def test_a_batch_is_visible_at_once_and_acked_once_a_commit_reached_the_disk(
    redis: Redis, engine: AsyncEngine, namespace: str
) -> None:
    names = Names(namespace)
    life = job_life("defer-1", T0, "succeeded", chunks=2, bars_per_chunk=3)
    await append(redis, names, life.events)
    async with _live(engine, redis, names) as projector:
        folded = await projector.step()

        assert folded == len(life.events)
        assert await _job_state(engine, "defer-1") == ("succeeded", 2, len(life.events), 6)
        assert await _pending(redis, names) == folded  # not acked: the disk may not hold it

        assert await projector.step() == 0  # the log is quiet: a durable commit, the acks
        assert await _pending(redis, names) == 0


async def test_commits_a_crash_lost_are_folded_again_from_the_pending_entries(
    redis: Redis, engine: AsyncEngine, namespace: str
) -> None:
    names = Names(namespace)
    life = job_life("defer-lost", T0, "succeeded", chunks=3, bars_per_chunk=2)
    await append(redis, names, life.events)
    async with _live(engine, redis, names) as projector:
        assert await projector.step() == len(life.events)
        assert await _job_state(engine, "defer-lost") == ("succeeded", 3, len(life.events), 6)

        async with engine.begin() as conn:  # the crash, before a commit waited for the disk
            for statement in _LOSE_EVERY_COMMIT:
                await conn.execute(text(statement))
        assert await end_other_connections(engine) >= 1  # what the crash does to them
        assert await _job_state(engine, "defer-lost") == (None, 0, 0, 0)

        for _ in range(5):  # it finds out, reads its pending entries again, folds them
            await projector.step()

    assert await _job_state(engine, "defer-lost") == ("succeeded", 3, len(life.events), 6)
    assert await position(engine, names) == (await _ids(redis, names))[-1]
    assert await _pending(redis, names) == 0


async def test_the_running_projector_acks_everything_once_the_log_goes_quiet(
    redis: Redis, engine: AsyncEngine, namespace: str
) -> None:
    names = Names(namespace)
    async with running_projector(engine, redis, names):
        for n in range(3):
            life = job_life(f"defer-run-{n}", T0, "succeeded", chunks=2)
            last = (await append(redis, names, life.events))[-1]
        await wait_projected(engine, names, last)

        async def all_acked() -> bool:
            return await _pending(redis, names) == 0

        await wait_until(all_acked, 5, "every projected entry acked")


async def _ids(redis: Redis, names: Names) -> list[str]:
    entries: Any = await redis.xrange(names.events)
    return [entry_id.decode() for entry_id, _ in entries]
