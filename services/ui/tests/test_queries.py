"""The console's read queries (backfill_readmodel.monitoring) on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from backfill_readmodel import monitoring
from tests.support.events import all_events, append, job_life, wait_folded
from tests.support.stack import Stack


async def test_throughput_bars_today_and_positions(stack: Stack) -> None:
    now = datetime.now(UTC)
    at = now - timedelta(minutes=10)
    done = job_life("q-done", at, "succeeded", chunks=3, bars_per_chunk=4)
    old = job_life("q-old", now - timedelta(hours=3), "succeeded", chunks=2, bars_per_chunk=5)
    queued = job_life("q-queued", at, "queued")
    await append(stack.redis, stack.names, all_events(done, old, queued))
    for life in (done, old, queued):
        await wait_folded(stack.engine, life.job_id, life.events[-1].seq)

    async with stack.engine.connect() as conn:
        points = await monitoring.throughput(conn, now)
        since = await monitoring.bars_collected_since(conn, at - timedelta(minutes=1))
        everything = await monitoring.bars_collected_since(conn, now - timedelta(days=1))
        tracked = await monitoring.jobs_by_id(conn, ["q-done", "q-queued", "nope"])
        none = await monitoring.jobs_by_id(conn, [])

    assert len(points) == 60
    assert points[-1].minute == now.replace(second=0, microsecond=0)
    assert sum(p.chunks for p in points) == 3  # the 3-hour-old job is outside the hour
    assert sum(p.bars for p in points) == 12
    assert since == 12
    assert everything == 22
    assert set(tracked) == {"q-done", "q-queued"}
    assert tracked["q-done"].view.status == "succeeded"
    assert tracked["q-done"].last_seq == done.events[-1].seq
    assert tracked["q-queued"].last_seq == 1
    assert none == {}
