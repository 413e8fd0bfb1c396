"""The bench's tail of the event log: each watched event's `ts`, and when its entry was logged.

A4 splits its latency with these two (issue #9), so both are checked against what the real
`EventLog` wrote, on real Redis.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from backfill_bench.events import EventWatcher
from backfill_bus import Names
from backfill_bus.event_log import EventLog
from backfill_contracts import JobStarted, JobSucceeded

STARTED: dict[str, Any] = {"attempt": 1, "worker_id": "w-1", "price_type": "trades", "chunks": []}


async def test_the_watcher_notes_each_watched_events_ts_and_its_entrys_time(
    redis: Redis, redis_url: str, namespace: str
) -> None:
    names = Names(namespace)
    log = EventLog(redis, names, "worker")
    await log.emit(JobStarted, job_id="before", **STARTED)

    async with EventWatcher(redis_url, names, {"job.started"}) as watcher:
        started = await log.emit(JobStarted, job_id="job-1", **STARTED)
        await log.emit(JobSucceeded, job_id="job-1", attempt=1, chunks=1, bars=1)
        await watcher.wait_for([("job.started", "job-1", -1)], 5)

    entries: Any = await redis.xrange(names.events)
    entry_id = entries[1][0].decode()
    key = ("job.started", "job-1", -1)
    assert watcher.stamped == {key: started.ts.timestamp()}  # from the tip on, its types only
    assert watcher.logged == {key: int(entry_id.split("-")[0]) / 1000}
    # Appended after it was stamped, within the entry id's millisecond resolution.
    assert -0.001 < watcher.logged[key] - watcher.stamped[key] < 1
