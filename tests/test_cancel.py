"""Cancelling: a queued job never starts; a running one stops between chunks."""

from __future__ import annotations

import json
from typing import Any

from redis.asyncio import Redis

from backfill_bus import EventLog, Names, Taken, request_cancel, take_ownership
from backfill_bus.cancellation import PageAfter
from tests.support.stack import running_stack, wait_until

JOB = {"source": "sim", "symbol": "AAPL", "bar_size": "1m", "start": "2024-01-01"}


async def test_a_cancelled_queued_job_never_starts(
    redis_url: str, database_url: str, namespace: str
) -> None:
    async with running_stack(redis_url, database_url, namespace, with_worker=False) as stack:
        job_id = await stack.submit(**JOB, end="2024-01-03")
        await stack.wait_job(job_id, {"queued"})
        response = await stack.api.post(f"/api/v1/jobs/{job_id}/cancel")
        assert response.status_code == 202
        assert response.json() == {"job_id": job_id, "status": "cancelled"}
        job = await stack.wait_job(job_id)
        assert job["status"] == "cancelled"
        assert job["error"] == {"outcome": "cancelled", "message": "cancelled by request"}

        await stack.start_worker("late-worker")

        async def command_consumed() -> bool:
            groups = await stack.redis.xinfo_groups(stack.names.command_stream("sim"))
            group = groups[0]  # last-delivered-id, not entries-read: Redis 6.2 has only that
            return bool(group["last-delivered-id"] != b"0-0" and group["pending"] == 0)

        await wait_until(command_consumed, message="the worker took and acked the command")
        events = (await stack.api.get(f"/api/v1/jobs/{job_id}/events")).json()
        assert [e["type"] for e in events] == ["job.submitted", "job.cancelled"]
        again = await stack.api.post(f"/api/v1/jobs/{job_id}/cancel")
        assert again.status_code == 409


async def test_a_running_job_stops_between_chunks(
    redis_url: str, database_url: str, namespace: str
) -> None:
    async with running_stack(redis_url, database_url, namespace) as stack:
        job_id = await stack.submit(**JOB, end="2024-02-01", options={"latency_ms": 100})

        async def some_chunks_done() -> bool:
            job = (await stack.api.get(f"/api/v1/jobs/{job_id}")).json()
            return bool(job.get("progress", {}).get("chunks_done", 0) >= 2)

        await wait_until(some_chunks_done, message="two chunks collected")
        response = await stack.api.post(f"/api/v1/jobs/{job_id}/cancel")
        assert response.json() == {"job_id": job_id, "status": "cancelling"}
        job = await stack.wait_job(job_id, timeout=5)
        assert job["status"] == "cancelled"
        assert 2 <= job["progress"]["chunks_done"] < job["progress"]["chunks_total"] == 23
        events = (await stack.api.get(f"/api/v1/jobs/{job_id}/events")).json()
        assert events[-1]["type"] == "job.cancelled"
        assert "job.succeeded" not in [e["type"] for e in events]


async def test_a_cancel_command_on_the_stream(
    redis_url: str, database_url: str, namespace: str
) -> None:
    """Another service can cancel with a plain XADD of a cancel_job command."""
    async with running_stack(redis_url, database_url, namespace, with_worker=False) as stack:
        job_id = await stack.submit(**JOB, end="2024-01-03")
        await stack.wait_job(job_id, {"queued"})
        cancel = {"type": "cancel_job", "job_id": job_id, "reason": "strategy stopped"}
        await stack.redis.xadd(stack.names.command_stream("sim"), {"__data__": json.dumps(cancel)})
        await stack.start_worker("worker-after-cancel")
        job = await stack.wait_job(job_id)
        assert job["status"] == "cancelled"
        assert job["error"]["message"] == "strategy stopped"
        assert job["progress"]["chunks_done"] == 0


async def test_taking_a_job_is_one_atomic_step_that_keeps_its_first_deadline(
    redis: Redis, namespace: str
) -> None:
    names = Names(namespace)
    first = await take_ownership(redis, names, "job-a", "w1", attempt=1, deadline=1000.5)
    assert first == Taken(owned=True, deadline=1000.5, cancel_reason=None)
    # A worker taking over the attempt (its first worker died) keeps the attempt's clock...
    again = await take_ownership(redis, names, "job-a", "w2", attempt=1, deadline=2000.0)
    assert again == Taken(owned=True, deadline=1000.5, cancel_reason=None)
    assert await redis.get(names.job_key("job-a", "owner")) == b"w2"
    # ...and sees a cancel asked while it ran, so it stops at once.
    events = EventLog(redis, names, "test")
    assert await request_cancel(redis, names, events, "job-a", "enough") == "cancelling"
    running = await take_ownership(redis, names, "job-a", "w3", attempt=1, deadline=3000.0)
    assert running == Taken(owned=True, deadline=1000.5, cancel_reason="enough")
    # A new attempt has a clock of its own.
    retried = await take_ownership(redis, names, "job-a", "w3", attempt=2, deadline=4000.0)
    assert retried.deadline == 4000.0

    # A job cancelled while queued is never owned, and nothing of its attempt starts.
    assert await request_cancel(redis, names, events, "job-b", "not now") == "cancelled"
    queued = await take_ownership(redis, names, "job-b", "w1", attempt=1, deadline=1000.0)
    assert queued == Taken(owned=False, deadline=None, cancel_reason="not now")
    assert await redis.get(names.job_key("job-b", "deadline:1")) is None


async def test_the_take_can_mark_the_job_submitted_and_read_new_commands_with_it(
    redis: Redis, namespace: str
) -> None:
    """A worker's take: one round trip that also records a job nobody recorded, and reads the
    commands published since the worker's last look (for their cancels)."""
    names = Names(namespace)
    stream = names.command_stream("sim")
    seen: Any = await redis.xadd(stream, {"data": b"seen"})
    fresh = await redis.xadd(stream, {"data": b"cancel_job"})
    read = PageAfter(stream, seen.decode(), 10)

    first = await take_ownership(
        redis, names, "job-c", "w1", attempt=1, deadline=10.0, mark_submitted=True, read=read
    )
    again = await take_ownership(
        redis, names, "job-c", "w2", attempt=1, deadline=20.0, mark_submitted=True
    )

    assert (first.owned, first.marked, first.deadline) == (True, True, 10.0)
    assert first.page == [(fresh, {b"data": b"cancel_job"})]
    assert await redis.get(names.job_key("job-c", "submitted")) == b"1"
    assert (again.owned, again.marked, again.page) == (True, False, None)
