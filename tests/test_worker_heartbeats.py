"""A worker says what it does on every change, but not "idle" between two jobs taken in a row."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from redis.asyncio import Redis

from backfill_bus import EventLog, Names, body_of
from backfill_worker.heartbeat import Heartbeat
from tests.support.stack import running_stack, wait_until

JOB = {"source": "sim", "bar_size": "1d", "start": "2024-01-01", "end": "2024-01-10"}


async def _states(redis: Redis, names: Names, worker_id: str) -> list[tuple[str, str | None]]:
    """The worker's heartbeats on the log, in order: (state, current job)."""
    entries: Any = await redis.xrange(names.events)
    beats = [json.loads(body_of(fields)) for _, fields in entries]
    return [
        (b["state"], b["current_job"])
        for b in beats
        if b["type"] == "worker.heartbeat" and b["worker_id"] == worker_id
    ]


async def test_queued_jobs_are_each_announced_busy_and_idle_comes_once_after_the_last(
    redis_url: str, database_url: str, namespace: str
) -> None:
    async with running_stack(redis_url, database_url, namespace, with_worker=False) as stack:
        ids = [await stack.submit(**JOB, symbol=f"HB{n}") for n in range(3)]
        # Queued before the worker starts: each job is taken as soon as the one before ends.
        # A delay far above that gap, so a slow machine cannot slip an idle beat in.
        await stack.start_worker("hb", heartbeat_interval_s=60, idle_heartbeat_delay_s=2.0)
        for job_id in ids:
            assert (await stack.wait_job(job_id))["status"] == "succeeded"

        async def idle_at_last() -> list[tuple[str, str | None]] | None:
            states = await _states(stack.redis, stack.names, "hb")
            return states if states[-1][0] == "idle" else None

        states = await wait_until(idle_at_last, timeout=10, message="idle after the last job")
    first_busy = states.index(("busy", ids[0]))
    assert states[first_busy:] == [("busy", ids[0]), ("busy", ids[1]), ("busy", ids[2]),
                                   ("idle", None)]  # fmt: skip


async def test_a_worker_stopped_before_its_idle_beat_says_stopping_and_never_idle(
    redis_url: str, database_url: str, namespace: str
) -> None:
    async with running_stack(redis_url, database_url, namespace, with_worker=False) as stack:
        worker = await stack.start_worker("hb", heartbeat_interval_s=60, idle_heartbeat_delay_s=5.0)
        job_id = await stack.submit(**JOB, symbol="HBSTOP")
        assert (await stack.wait_job(job_id))["status"] == "succeeded"
        await worker.stop()  # within the idle delay: its idle beat is still waiting
        states = await _states(stack.redis, stack.names, "hb")
    last_busy = states.index(("busy", job_id))
    assert [state for state, _ in states[last_busy:]] == ["busy", "stopping", "stopped"]


async def test_a_busy_beat_announced_later_says_its_own_job_in_order(
    redis_url: str, namespace: str
) -> None:
    redis = Redis.from_url(redis_url)
    names = Names(namespace)
    heartbeat = Heartbeat(EventLog(redis, names, producer="hb"), "hb", "sim", interval_s=60)
    try:
        heartbeat.announce("busy", "J1", after_s=0.3)
        heartbeat.announce("busy", "J2")  # at once, yet after J1's: the log keeps their order
        await asyncio.sleep(0.1)
        assert await _states(redis, names, "hb") == []  # the job starts before its beat goes
        assert (heartbeat.state, heartbeat.current_job) == ("busy", "J2")  # the timed beats' say
        await heartbeat.set("stopping")  # waits for the announced beats, then goes after them
        assert await _states(redis, names, "hb") == [
            ("busy", "J1"),
            ("busy", "J2"),
            ("stopping", None),
        ]
    finally:
        await redis.aclose()
