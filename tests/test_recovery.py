"""Crash recovery, claims, limits, handoff and retry, on real Redis and a real database."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from typing import Any

from backfill_bus import ensure_command_group
from tests.support.stack import Stack, running_stack, wait_until

# 8 weekdays: Jan 1-5 and 8-10, one chunk each, 390 bars a chunk.
EIGHT_DAYS = {"source": "sim", "symbol": "AAPL", "bar_size": "1m", "start": "2024-01-01",
              "end": "2024-01-11"}  # fmt: skip


async def _events(stack: Stack, job_id: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = (await stack.api.get(f"/api/v1/jobs/{job_id}/events")).json()
    return events


async def _chunks_done(stack: Stack, job_id: str, at_least: int) -> bool:
    job = (await stack.api.get(f"/api/v1/jobs/{job_id}")).json()
    return bool(job.get("progress", {}).get("chunks_done", 0) >= at_least)


async def _bar_count(stack: Stack, symbol: str = "AAPL") -> int:
    params = {"source": "sim", "symbol": symbol, "bar_size": "1m"}
    body = (await stack.api.get("/api/v1/bars", params=params)).json()
    assert len({bar["ts"] for bar in body["bars"]}) == body["count"]
    count: int = body["count"]
    return count


async def test_a_killed_worker_s_job_is_reclaimed_and_resumed(
    redis_url: str, database_url: str, namespace: str
) -> None:
    async with running_stack(redis_url, database_url, namespace, with_worker=False) as stack:
        env = {
            **os.environ,
            "BACKFILL_REDIS_URL": redis_url,
            "BACKFILL_REDIS_NAMESPACE": namespace,
            "BACKFILL_WORKER_ID": "doomed",
            "BACKFILL_CLAIM_IDLE_MS": "800",
        }
        doomed = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "backfill_sim", env=env,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        try:
            job_id = await stack.submit(**EIGHT_DAYS, options={"latency_ms": 250})
            await wait_until(lambda: _chunks_done(stack, job_id, 3), message="3 chunks done")
            doomed.send_signal(signal.SIGKILL)
            killed_at = time.time()
            await doomed.wait()
        finally:
            if doomed.returncode is None:
                doomed.kill()
                await doomed.wait()
        await stack.start_worker("rescuer", claim_idle_ms=800, claim_interval_ms=50)

        job = await stack.wait_job(job_id)
        assert job["status"] == "succeeded"
        assert job["progress"]["chunks_done"] == job["progress"]["chunks_total"] == 8
        assert job["progress"]["bars_stored"] == 8 * 390 == await _bar_count(stack)
        events = await _events(stack, job_id)
        starts = [e for e in events if e["type"] == "job.started"]
        assert [e["data"]["worker_id"] for e in starts] == ["doomed", "rescuer"]
        resumed = starts[1]["data"]["resumed_chunks"]
        assert resumed[:3] == [0, 1, 2]  # not collected again
        rescued = [
            e for e in events if e["type"] == "chunk.collected" and e["producer"] == "rescuer"
        ]
        assert {e["data"]["chunk"] for e in rescued} == set(range(8)) - set(resumed)
        first_rescue = min(e["ts"] for e in rescued)
        resume_s = _seconds(first_rescue) - killed_at
        assert 0.8 <= resume_s < 5, resume_s  # after the idle threshold, not much later


def _seconds(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso).timestamp()


async def test_a_live_worker_keeps_its_long_job(
    redis_url: str, database_url: str, namespace: str
) -> None:
    """The claim is refreshed while the job runs: an idle worker never takes it over."""
    async with running_stack(redis_url, database_url, namespace, with_worker=False) as stack:
        # Workers, projector and API share this test's event loop: a threshold of 300 ms let a
        # loop stall on a busy CI machine pass for a dead worker. 1 s still makes the job (4 s)
        # outlast four thresholds.
        fast: dict[str, Any] = {"claim_idle_ms": 1000, "claim_interval_ms": 50}
        await stack.start_worker("first", **fast)
        job_id = await stack.submit(**EIGHT_DAYS, options={"latency_ms": 500})
        await wait_until(lambda: _chunks_done(stack, job_id, 1), message="job running")
        await stack.start_worker("second", **fast)
        job = await stack.wait_job(job_id)  # 4 s of work: over four idle thresholds
        assert job["status"] == "succeeded"
        events = await _events(stack, job_id)
        assert sum(e["type"] == "job.started" for e in events) == 1
        assert {e["producer"] for e in events if e["type"] != "job.submitted"} == {"first"}


async def test_a_command_delivered_too_often_is_dead_lettered(
    redis_url: str, database_url: str, namespace: str
) -> None:
    async with running_stack(redis_url, database_url, namespace, with_worker=False) as stack:
        job_id = await stack.submit(**EIGHT_DAYS)
        stream, group = stack.names.command_stream("sim"), "sim-workers"
        await ensure_command_group(stack.redis, stack.names, "sim")
        read: Any = await stack.redis.xreadgroup(group, "ghost", {stream: ">"}, count=1)
        entry_id = read[0][1][0][0]
        for _ in range(5):  # five more deliveries to workers that died on it
            await stack.redis.xclaim(stream, group, "ghost", 0, [entry_id])
        await stack.start_worker("w", claim_idle_ms=100, claim_interval_ms=50)

        job = await stack.wait_job(job_id)
        assert job["status"] == "failed"
        assert job["error"]["outcome"] == "dead_lettered"
        assert "delivered 7 times, more than the limit of 5" in job["error"]["message"]
        letters: Any = await stack.redis.xrange(stack.names.dlq)
        assert [f[b"entry_id"] for _, f in letters] == [entry_id]
        pending: Any = await stack.redis.xpending(stream, group)
        assert pending["pending"] == 0


async def test_a_job_past_its_time_limit_fails_as_timeout(
    redis_url: str, database_url: str, namespace: str
) -> None:
    async with running_stack(redis_url, database_url, namespace) as stack:
        started = time.monotonic()
        job_id = await stack.submit(**EIGHT_DAYS, options={"latency_ms": 200}, time_limit_s=0.5)
        job = await stack.wait_job(job_id)
        assert time.monotonic() - started < 3
        assert job["status"] == "failed"
        assert job["error"] == {
            "outcome": "timeout",
            "message": "the job ran past its time limit of 0.5 s",
        }
        assert 1 <= job["progress"]["chunks_done"] < 8


async def test_a_request_past_its_timeout_is_retried_then_fails(
    redis_url: str, database_url: str, namespace: str
) -> None:
    async with running_stack(redis_url, database_url, namespace, with_worker=False) as stack:
        await stack.start_worker("w", request_timeout_s=0.3, max_chunk_tries=2)
        job_id = await stack.submit(**EIGHT_DAYS, options={"latency_ms": 5000})
        job = await stack.wait_job(job_id, timeout=10)
        assert job["status"] == "failed"
        assert job["error"] == {
            "outcome": "timeout",
            "message": "the request took longer than 0.3 s (gave up after 2 tries)",
        }
        failed = [e for e in await _events(stack, job_id) if e["type"] == "chunk.failed"]
        assert [(e["data"]["outcome"], e["data"]["will_retry"]) for e in failed] == [
            ("timeout", True),
            ("timeout", False),
        ]


async def test_cancel_stops_a_request_in_flight_within_a_second(
    redis_url: str, database_url: str, namespace: str
) -> None:
    async with running_stack(redis_url, database_url, namespace) as stack:
        job_id = await stack.submit(**EIGHT_DAYS, options={"latency_ms": 10_000})
        await stack.wait_job(job_id, {"running"})
        asked = time.monotonic()
        assert (await stack.api.post(f"/api/v1/jobs/{job_id}/cancel")).status_code == 202
        job = await stack.wait_job(job_id, timeout=5)
        assert job["status"] == "cancelled"
        assert time.monotonic() - asked < 1.0


async def test_a_stopping_worker_hands_its_job_to_another_at_once(
    redis_url: str, database_url: str, namespace: str
) -> None:
    async with running_stack(redis_url, database_url, namespace, with_worker=False) as stack:
        leaving = await stack.start_worker("leaving")
        job_id = await stack.submit(**EIGHT_DAYS, options={"latency_ms": 200})
        await wait_until(lambda: _chunks_done(stack, job_id, 2), message="2 chunks done")
        # The default idle threshold (30 s) applies: only a handback makes this quick.
        await stack.start_worker("staying", claim_interval_ms=100)
        stop_started = time.monotonic()
        await leaving.stop()
        assert time.monotonic() - stop_started < 2

        job = await stack.wait_job(job_id, timeout=15)
        assert job["status"] == "succeeded"
        assert await _bar_count(stack) == 8 * 390
        events = await _events(stack, job_id)
        handed = [e for e in events if e["type"] == "job.handed_back"]
        assert [e["data"]["worker_id"] for e in handed] == ["leaving"]
        continued = [
            e for e in events if e["type"] == "chunk.collected" and e["producer"] == "staying"
        ]
        gap = _seconds(min(e["ts"] for e in continued)) - _seconds(handed[0]["ts"])
        assert gap < 2, gap
        collected = [e["data"]["chunk"] for e in events if e["type"] == "chunk.collected"]
        assert sorted(collected) == list(range(8))  # each chunk collected exactly once


async def test_retry_resumes_a_failed_job_from_its_checkpoints(
    redis_url: str, database_url: str, namespace: str
) -> None:
    async with running_stack(redis_url, database_url, namespace, with_worker=False) as stack:
        strict = await stack.start_worker("strict", max_chunk_tries=1)
        job_id = await stack.submit(**EIGHT_DAYS, options={"fail_every": 4})
        failed = await stack.wait_job(job_id)
        assert failed["status"] == "failed"
        assert failed["error"]["outcome"] == "upstream_error"
        assert failed["progress"]["chunks_done"] == 3
        await strict.stop()
        await stack.start_worker("patient")

        response = await stack.api.post(f"/api/v1/jobs/{job_id}/retry")
        assert response.status_code == 202
        assert response.json() == {"job_id": job_id, "attempt": 2, "status": "queued"}
        twice = await stack.api.post(f"/api/v1/jobs/{job_id}/retry")
        assert twice.status_code == 409

        job = await stack.wait_job(job_id, {"succeeded"})
        assert job["attempt"] == 2
        assert job["error"] is None
        assert job["progress"]["chunks_done"] == 8
        assert await _bar_count(stack) == 8 * 390
        starts = [e for e in await _events(stack, job_id) if e["type"] == "job.started"]
        assert [(e["attempt"], e["data"]["resumed_chunks"]) for e in starts] == [
            (1, []),
            (2, [0, 1, 2]),
        ]
        running = await stack.api.post(f"/api/v1/jobs/{job_id}/retry")
        assert running.status_code == 409  # succeeded: nothing to retry


async def test_a_queued_job_says_when_no_worker_is_online(
    redis_url: str, database_url: str, namespace: str
) -> None:
    async with running_stack(redis_url, database_url, namespace, with_worker=False) as stack:
        job_id = await stack.submit(**EIGHT_DAYS)
        job = await stack.wait_job(job_id, {"queued"})
        assert job["notice"] == "no sim worker has been online yet; the job waits for one"
        assert (await stack.api.get("/api/v1/workers")).json() == []

        worker = await stack.start_worker("w1")
        assert (await stack.wait_job(job_id))["status"] == "succeeded"
        await worker.stop()

        async def stopped() -> list[Any]:
            found: list[Any] = (await stack.api.get("/api/v1/workers")).json()
            return found if found and found[0]["state"] == "stopped" else []

        workers = await wait_until(stopped, message="the stopped heartbeat projected")
        assert [(w["worker_id"], w["source"], w["alive"]) for w in workers] == [
            ("w1", "sim", False)
        ]
        assert workers[0]["pid"] == os.getpid()
        late = await stack.submit(**EIGHT_DAYS)
        queued = await stack.wait_job(late, {"queued"})
        assert queued["notice"].startswith("no sim worker online since ")


async def test_raw_command_json_is_the_documented_wire_format(
    redis_url: str, database_url: str, namespace: str
) -> None:
    """A reclaimed raw entry is decoded like a fresh one (FastStream's parser, both paths)."""
    async with running_stack(redis_url, database_url, namespace, with_worker=False) as stack:
        stream, group = stack.names.command_stream("sim"), "sim-workers"
        await ensure_command_group(stack.redis, stack.names, "sim")
        body = {"type": "collect_bars", "job_id": "raw-1", **EIGHT_DAYS}
        legacy = json.dumps({"data": json.dumps(body), "headers": {}})
        await stack.redis.xadd(stream, {"__data__": legacy})
        await stack.redis.xreadgroup(group, "ghost", {stream: ">"}, count=1)
        await stack.start_worker("w", claim_idle_ms=100, claim_interval_ms=50)
        assert (await stack.wait_job("raw-1"))["status"] == "succeeded"


async def test_a_post_while_redis_is_down_is_refused_not_lost(
    redis_url: str, database_url: str, namespace: str, tmp_path: Any
) -> None:
    """The API answers 503 (nothing accepted) while Redis is away, and 202 once it is back."""
    from tests.support.servers import RedisServer

    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        async with running_stack(server.url, database_url, namespace) as stack:
            accepted = await stack.submit(**EIGHT_DAYS)
            server.stop()
            response = await stack.api.post("/api/v1/jobs", json=EIGHT_DAYS)
            assert response.status_code == 503
            assert "nothing was accepted" in response.json()["detail"]
            server.start()  # same port, same AOF: the accepted job is still there
            job = await stack.wait_job(accepted, timeout=30)
            assert job["status"] == "succeeded"
            assert (await stack.api.post("/api/v1/jobs", json=EIGHT_DAYS)).status_code == 202
    finally:
        server.stop()
