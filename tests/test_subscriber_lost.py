"""A worker whose command subscriber stopped exits non-zero, so Docker or `backfill dev` restarts
it, and hands its running job back on the way out, as on SIGTERM. On a real Redis.

FastStream stops a group subscriber for good when a read finds its group gone (NOGROUP), and
the process lives on: without this, the worker would sit there unable to take work.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from backfill_bus import Names, ensure_command_group
from backfill_bus.codec import text
from backfill_sim import SimSource
from backfill_worker import Worker, WorkerSettings
from backfill_worker.main import EXIT_SUBSCRIBER_LOST, run_until_stopped
from tests.support.stack import wait_until

GRACE_S = 1.0


async def _events(redis: Redis, names: Names) -> list[tuple[tuple[int, int], dict[str, Any]]]:
    """The event log's entries, each with its id as a (milliseconds, sequence) pair."""
    entries: Any = await redis.xrange(names.events)
    return [(_id(entry_id), json.loads(fields[b"__data__"])) for entry_id, fields in entries]


def _id(entry_id: bytes) -> tuple[int, int]:
    ms, _, seq = text(entry_id).partition("-")
    return int(ms), int(seq)


async def _idle(redis: Redis, names: Names, worker_id: str) -> bool:
    """Whether the worker said it is idle: it does once its subscriber reads."""
    return any(
        e["type"] == "worker.heartbeat" and e["worker_id"] == worker_id and e["state"] == "idle"
        for _, e in await _events(redis, names)
    )


async def test_a_worker_process_whose_group_was_deleted_exits_non_zero(
    redis_url: str, redis: Redis, namespace: str, tmp_path: Path
) -> None:
    names = Names(namespace)
    env = {
        **os.environ,
        "BACKFILL_REDIS_URL": redis_url,
        "BACKFILL_REDIS_NAMESPACE": namespace,
        "BACKFILL_WORKER_ID": "orphaned",
        "BACKFILL_POLL_INTERVAL_MS": "100",
        "BACKFILL_HEARTBEAT_INTERVAL_S": "0.2",
        "BACKFILL_SUBSCRIBER_LOST_GRACE_S": str(GRACE_S),
        "BACKFILL_LOG_FORMAT": "text",
    }
    output = tmp_path / "worker.log"
    with output.open("wb") as log:
        worker = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "backfill_sim", env=env, stdout=log, stderr=log
        )
    try:
        await wait_until(
            lambda: _idle(redis, names, "orphaned"), timeout=30, message="the worker consuming"
        )
        # What a FLUSHDB, a deleted stream or an XGROUP DESTROY does to a running worker.
        await redis.xgroup_destroy(names.command_stream("sim"), names.command_group("sim"))
        destroyed = time.monotonic()
        code = await asyncio.wait_for(worker.wait(), timeout=30)
        took = time.monotonic() - destroyed
    finally:
        if worker.returncode is None:
            worker.kill()
            await worker.wait()
    logged = output.read_text(errors="replace")
    assert code == EXIT_SUBSCRIBER_LOST, logged
    assert "stopped consuming" in logged, logged
    assert f"exiting with code {code}" in logged, logged
    assert GRACE_S <= took < GRACE_S + 10, took
    beats = [e for _, e in await _events(redis, names) if e["type"] == "worker.heartbeat"]
    assert beats[-1]["state"] == "stopped"


async def test_a_lost_subscriber_hands_the_running_job_back(
    redis_url: str, redis: Redis, namespace: str
) -> None:
    names = Names(namespace)
    stream, group = names.command_stream("sim"), names.command_group("sim")
    await ensure_command_group(redis, names, "sim")
    command = {
        "type": "collect_bars",
        "job_id": "lost-sub-1",
        "source": "sim",
        "symbol": "LOST",
        "bar_size": "1m",
        "start": "2024-01-01",
        "end": "2024-01-11",  # 8 chunks of 300 ms: still running when the subscriber goes
        "options": {"latency_ms": 300},
    }
    entry_id = text(await redis.xadd(stream, {"__data__": json.dumps(command)}))
    # A worker that died holding it: the survivor's claimer takes it over, outside the
    # subscriber's task, so the job is running while the subscriber is lost.
    await redis.xreadgroup(group, "dead", {stream: ">"}, count=1)
    worker = Worker(
        WorkerSettings(
            redis_url=redis_url,
            redis_namespace=namespace,
            worker_id="survivor",
            claim_idle_ms=100,
            claim_interval_ms=50,
            heartbeat_interval_s=0.2,
            poll_interval_ms=100,
            subscriber_lost_grace_s=GRACE_S,
        ),
        SimSource(),
    )
    stop = asyncio.Event()
    running = asyncio.create_task(run_until_stopped(worker, stop))
    try:

        async def started() -> bool:
            return any(
                e["type"] == "job.started" and e.get("worker_id") == "survivor"
                for _, e in await _events(redis, names)
            )

        await wait_until(started, timeout=15, message="the survivor running the job")
        # FastStream's own way out after a terminal read error: it stops the subscriber.
        (subscriber,) = worker.broker.subscribers
        await subscriber.stop()
        assert not worker.consuming()
        await asyncio.sleep(0.5)  # a timed beat already in flight may still land
        cut = (await _events(redis, names))[-1][0]
        code = await asyncio.wait_for(running, timeout=30)
    finally:
        if not running.done():
            stop.set()
            with contextlib.suppress(Exception):
                await running
    assert code == EXIT_SUBSCRIBER_LOST

    events = await _events(redis, names)
    handed = [e for _, e in events if e["type"] == "job.handed_back"]
    assert [(e["job_id"], e["worker_id"]) for e in handed] == [("lost-sub-1", "survivor")]
    assert not any(e["type"] == "job.succeeded" for _, e in events)
    # Still pending for the next worker, and marked long idle so one takes it at once.
    pending: Any = await redis.xpending_range(stream, group, min="-", max="+", count=10)
    assert [(text(p["message_id"]), text(p["consumer"])) for p in pending] == [
        (entry_id, "survivor")
    ]
    assert pending[0]["time_since_delivered"] > 3_600_000
    # Once lost, the worker stopped saying it was alive: no timed idle or busy beat after it.
    after = [e["state"] for i, e in events if e["type"] == "worker.heartbeat" and i > cut]
    assert after, "no stopping or stopped beat"
    assert set(after) <= {"stopping", "stopped"}, after
