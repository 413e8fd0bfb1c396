"""Job modes and no duplicate work, end to end: requests counted at the (sim) source."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from backfill_cli.main import main
from backfill_contracts import BarBatch, CollectBars
from backfill_sim import SimSource
from backfill_worker import FetchRequest, Plan
from tests.support.api_server import bearer_token, served_api
from tests.support.bars import delete_bars
from tests.support.stack import Stack, running_stack, wait_until

WEEK = {"source": "sim", "symbol": "MODES", "bar_size": "1m"}


class CountingSim(SimSource):
    """The sim source, counting the requests it answers (each chunk fetch is one)."""

    def __init__(self) -> None:
        self.windows: list[tuple[str, str]] = []
        self.plans = 0

    async def fetch(self, request: FetchRequest) -> BarBatch:
        chunk = request.chunk
        self.windows.append((chunk.start.isoformat(), chunk.end.isoformat()))
        return await super().fetch(request)

    async def plan(self, job: CollectBars) -> Plan:
        self.plans += 1
        return await super().plan(job)

    def taken(self) -> list[tuple[str, str]]:
        windows, self.windows = self.windows, []
        return windows


@contextlib.asynccontextmanager
async def counting_stack(
    redis_url: str, database_url: str, namespace: str
) -> AsyncIterator[tuple[Stack, CountingSim]]:
    """A stack with one worker, of a sim that counts what it is asked."""
    async with running_stack(redis_url, database_url, namespace, with_worker=False) as stack:
        sim = CountingSim()
        await stack.start_worker(f"{namespace}w", source=sim)
        yield stack, sim


async def _run(stack: Stack, **job: Any) -> dict[str, Any]:
    job_id = await stack.submit(**{**WEEK, **job})
    done = await stack.wait_job(job_id)
    assert done["status"] == "succeeded", done
    return done


def _day(day: int) -> tuple[str, str]:
    return (f"2024-01-{day:02d}T00:00:00+00:00", f"2024-01-{day + 1:02d}T00:00:00+00:00")


async def test_fill_gaps_plans_only_the_missing_days_and_then_nothing(
    redis_url: str, database_url: str, namespace: str
) -> None:
    async with counting_stack(redis_url, database_url, namespace) as (stack, sim):
        await _run(stack, start="2024-01-08", end="2024-01-10")
        assert sim.taken() == [_day(8), _day(9)]

        filled = await _run(stack, start="2024-01-08", end="2024-01-13", mode="fill_gaps")
        assert sim.taken() == [_day(10), _day(11), _day(12)]
        assert filled["progress"]["chunks_total"] == 3
        assert filled["progress"]["bars_stored"] == 3 * 390

        plans = sim.plans
        again = await _run(stack, start="2024-01-08", end="2024-01-13", mode="fill_gaps")
        assert sim.taken() == []
        assert sim.plans == plans  # nothing missing: the source is not even asked to plan
        assert again["progress"]["chunks_total"] == 0
        events = (await stack.api.get(f"/api/v1/jobs/{again['job_id']}/events")).json()
        started = next(e for e in events if e["type"] == "job.started")
        assert started["data"]["chunks"] == []

        # An identical chunk already stored is not fetched again, even in mode `full`...
        full = await _run(stack, start="2024-01-08", end="2024-01-13")
        assert sim.taken() == []
        assert full["progress"]["chunks_total"] == 0
        events = (await stack.api.get(f"/api/v1/jobs/{full['job_id']}/events")).json()
        started = next(e for e in events if e["type"] == "job.started")
        assert started["data"]["skipped_chunks"] == 5
        # ...unless forced.
        await _run(stack, start="2024-01-08", end="2024-01-10", force=True)
        assert sim.taken() == [_day(8), _day(9)]

        coverage = (await stack.api.get("/api/v1/coverage", params=WEEK)).json()
        assert coverage["count"] == 5 * 390
        assert coverage["gaps"] == []


async def test_a_hole_is_refetched_only_when_forced_and_only_the_hole(
    redis_url: str, database_url: str, namespace: str
) -> None:
    async with counting_stack(redis_url, database_url, namespace) as (stack, sim):
        await _run(stack, start="2024-01-08", end="2024-01-10")
        sim.taken()
        async with stack.engine.begin() as conn:
            hole = datetime(2024, 1, 9, 15, 0, tzinfo=UTC), datetime(2024, 1, 9, 15, 10, tzinfo=UTC)
            await conn.execute(delete_bars("MODES", *hole))
        # The source answered for that window already: a plain fill_gaps does not ask again.
        await _run(stack, start="2024-01-08", end="2024-01-10", mode="fill_gaps")
        assert sim.taken() == []
        forced = await _run(
            stack, start="2024-01-08", end="2024-01-10", mode="fill_gaps", force=True
        )
        assert sim.taken() == [("2024-01-09T15:00:00+00:00", "2024-01-09T15:10:00+00:00")]
        assert forced["progress"]["bars_stored"] == 10
        coverage = (await stack.api.get("/api/v1/coverage", params=WEEK)).json()
        assert (coverage["count"], coverage["gaps"]) == (2 * 390, [])


async def test_top_up_collects_after_the_last_bar_and_then_nothing(
    redis_url: str, database_url: str, namespace: str
) -> None:
    async with counting_stack(redis_url, database_url, namespace) as (stack, sim):
        await _run(stack, start="2024-01-08", end="2024-01-10")
        sim.taken()
        # From the 1st: what lies before the last stored bar is not top_up's business.
        await _run(stack, start="2024-01-01", end="2024-01-13", mode="top_up")
        assert sim.taken() == [_day(10), _day(11), _day(12)]
        again = await _run(stack, start="2024-01-01", end="2024-01-13", mode="top_up")
        assert sim.taken() == []
        assert again["progress"]["chunks_total"] == 0


async def test_a_raw_xadd_fill_gaps_works_without_the_api(
    redis_url: str, database_url: str, namespace: str
) -> None:
    async with counting_stack(redis_url, database_url, namespace) as (stack, sim):
        await _run(stack, start="2024-01-08", end="2024-01-10")
        sim.taken()
        command = {
            "type": "collect_bars", "job_id": f"{namespace}raw", **WEEK,
            "start": "2024-01-08", "end": "2024-01-11", "mode": "fill_gaps",
        }  # fmt: skip
        await stack.redis.xadd(stack.names.command_stream("sim"), {"__data__": json.dumps(command)})
        job = await stack.wait_job(f"{namespace}raw")
        assert job["status"] == "succeeded"
        assert sim.taken() == [_day(10)]


async def test_a_worker_without_the_database_refuses_fill_gaps(
    redis_url: str, database_url: str, namespace: str
) -> None:
    async with running_stack(redis_url, database_url, namespace, with_worker=False) as stack:
        await stack.start_worker(f"{namespace}w", database_url="")
        job_id = await stack.submit(**WEEK, start="2024-01-08", end="2024-01-10", mode="top_up")
        job = await stack.wait_job(job_id)
        assert job["status"] == "failed"
        assert job["error"]["outcome"] == "invalid_request"
        assert "BACKFILL_DATABASE_URL" in job["error"]["message"]


async def test_a_fill_handed_back_midway_resumes_its_pinned_plan(
    redis_url: str, database_url: str, namespace: str
) -> None:
    async with running_stack(redis_url, database_url, namespace, with_worker=False) as stack:
        sim = CountingSim()
        leaving = await stack.start_worker(f"{namespace}leaving", source=sim)
        await _run(stack, start="2024-01-08", end="2024-01-10")
        sim.taken()
        job_id = await stack.submit(
            **WEEK, start="2024-01-01", end="2024-01-13", mode="fill_gaps",
            options={"latency_ms": 200},
        )  # fmt: skip

        async def two_done() -> bool:
            job = (await stack.api.get(f"/api/v1/jobs/{job_id}")).json()
            return bool(job.get("progress", {}).get("chunks_done", 0) >= 2)

        await wait_until(two_done, message="2 chunks done")
        await stack.start_worker(f"{namespace}staying", source=sim, claim_interval_ms=100)
        await leaving.stop()
        job = await stack.wait_job(job_id, timeout=30)
        assert job["status"] == "succeeded"
        # Only the days before the 8th and after the 9th; the one in flight at the handback
        # is asked again, every other once.
        taken = sim.taken()
        assert sorted(set(taken)) == [_day(d) for d in (1, 2, 3, 4, 5, 10, 11, 12)]
        assert len(taken) <= 9
        assert job["progress"]["chunks_done"] == job["progress"]["chunks_total"] == 8
        events = (await stack.api.get(f"/api/v1/jobs/{job_id}/events")).json()
        starts = [e["data"] for e in events if e["type"] == "job.started"]
        assert len(starts) == 2
        assert starts[0]["chunks"] == starts[1]["chunks"]
        assert starts[1]["resumed_chunks"][:2] == [0, 1]
        collected = [e["data"]["chunk"] for e in events if e["type"] == "chunk.collected"]
        assert sorted(collected) == list(range(8))  # each chunk collected exactly once


async def test_an_unreadable_database_costs_full_jobs_nothing_but_their_savings(
    redis_url: str, database_url: str, namespace: str, tmp_path: Path
) -> None:
    async with running_stack(redis_url, database_url, namespace, with_worker=False) as stack:
        sim = CountingSim()
        # A database without the projections' tables: every read of it fails.
        unmigrated = f"sqlite+aiosqlite:///{tmp_path / 'unmigrated.db'}"
        await stack.start_worker(f"{namespace}w", source=sim, database_url=unmigrated)
        await _run(stack, start="2024-01-08", end="2024-01-10")
        assert sim.taken() == [_day(8), _day(9)]
        job_id = await stack.submit(**WEEK, start="2024-01-08", end="2024-01-10", mode="fill_gaps")
        job = await stack.wait_job(job_id)
        assert (job["status"], job["error"]["outcome"]) == ("failed", "internal_error")
        assert "cannot read what is stored already" in job["error"]["message"]


async def test_a_universe_run_as_top_up_asks_the_source_nothing_new(
    redis_url: str, database_url: str, namespace: str
) -> None:
    async with counting_stack(redis_url, database_url, namespace) as (stack, sim):
        universe = {
            "name": "daily", "source": "sim", "symbols": ["UA", "UB"], "bar_sizes": ["1d"],
            "start": "2024-01-01", "end": "2024-02-01",
        }  # fmt: skip
        assert (await stack.api.put("/api/v1/universes/daily", json=universe)).status_code == 201

        async def run(**body: Any) -> list[dict[str, Any]]:
            answer = await stack.api.post("/api/v1/universes/daily/runs", json=body)
            assert answer.status_code == 202, answer.text
            return [await stack.wait_job(j["job_id"]) for j in answer.json()["jobs"]]

        first = await run(run_id="first")
        assert [j["progress"]["bars_stored"] for j in first] == [23, 23]
        assert len(sim.taken()) == 2
        topped = await run(run_id="top-up", mode="top_up")
        assert [(j["status"], j["progress"]["chunks_total"]) for j in topped] == [
            ("succeeded", 0),
            ("succeeded", 0),
        ]
        assert sim.taken() == []

        # The same from the command line.
        async with served_api(stack) as api_url:
            argv = ["universe", "run", "daily", "--run-id", "cli", "--mode", "top_up"]
            with pytest.MonkeyPatch.context() as env:
                env.setenv("BACKFILL_API_TOKEN", bearer_token(stack) or "")
                code = await asyncio.to_thread(main, [*argv, "--api-url", api_url])
        assert code == 0
        assert sim.taken() == []


async def test_a_full_job_whose_pin_redis_lost_keeps_its_whole_plan(
    redis_url: str, database_url: str, namespace: str
) -> None:
    async with running_stack(redis_url, database_url, namespace, with_worker=False) as stack:
        sim = CountingSim()
        leaving = await stack.start_worker(f"{namespace}leaving", source=sim)
        job_id = await stack.submit(
            **WEEK, start="2024-01-01", end="2024-01-09", options={"latency_ms": 200}
        )

        async def two_done() -> bool:
            job = (await stack.api.get(f"/api/v1/jobs/{job_id}")).json()
            return bool(job.get("progress", {}).get("chunks_done", 0) >= 2)

        await wait_until(two_done, message="2 chunks done")
        await leaving.stop()
        # As if Redis came back without its last writes: no pinned plan, no checkpoints.
        names = stack.names
        await stack.redis.delete(
            names.job_key(job_id, "plan"), names.job_key(job_id, "chunks_done")
        )
        await stack.start_worker(f"{namespace}staying", source=sim, claim_interval_ms=100)
        job = await stack.wait_job(job_id, timeout=30)
        assert job["status"] == "succeeded"
        # Its own stored chunks are fetched again (checkpoints lost), never dropped from its plan.
        assert job["progress"]["chunks_done"] == job["progress"]["chunks_total"] == 6
        assert job["progress"]["bars_stored"] >= 6 * 390
        coverage = (await stack.api.get("/api/v1/coverage", params=WEEK)).json()
        assert (coverage["count"], coverage["gaps"]) == (6 * 390, [])


def _window(day: int) -> list[int]:
    start = int(datetime(2024, 1, day, tzinfo=UTC).timestamp())
    return [start, start + 86400]


async def _run_raw(stack: Stack, job_id: str, **job: Any) -> dict[str, Any]:
    """Run a job published straight onto the stream, under an id the test chose."""
    command = {"type": "collect_bars", "job_id": job_id, **WEEK, **job}
    await stack.redis.xadd(stack.names.command_stream("sim"), {"__data__": json.dumps(command)})
    done = await stack.wait_job(job_id)
    assert done["status"] == "succeeded", done
    return done


async def _starts_and_leases(stack: Stack, job_id: str) -> tuple[list[dict[str, Any]], list[Any]]:
    events = (await stack.api.get(f"/api/v1/jobs/{job_id}/events")).json()
    starts = [e["data"] for e in events if e["type"] == "job.started"]
    leases = [key async for key in stack.redis.scan_iter(f"{stack.names.namespace}*:lease")]
    return starts, leases


async def test_a_full_job_with_chunks_done_resumes_after_them_and_holds_no_lease(
    redis_url: str, database_url: str, namespace: str
) -> None:
    """A redelivered job (its plan pinned, its first chunk done) whose start carried the pin:
    the start does not go out as a fresh one, the job resumes after its done chunk, and the
    lease its first look took for that chunk is let go, not left to lapse."""
    async with counting_stack(redis_url, database_url, namespace) as (stack, sim):
        job_id = f"{namespace}resumed"
        days = [_window(d) for d in (1, 2, 3)]
        await stack.redis.set(stack.names.job_key(job_id, "plan"), json.dumps(days))
        done_key = stack.names.job_key(job_id, "chunks_done")
        await stack.redis.hset(done_key, f"0:{days[0][0]}:{days[0][1]}", 390)

        await _run_raw(stack, job_id, start="2024-01-01", end="2024-01-04")

        assert sim.taken() == [_day(2), _day(3)]
        starts, leases = await _starts_and_leases(stack, job_id)
        assert [(len(s["chunks"]), s["resumed_chunks"]) for s in starts] == [(3, [0])]
        assert leases == []


async def test_a_full_job_follows_the_plan_another_delivery_pinned(
    redis_url: str, database_url: str, namespace: str
) -> None:
    async with counting_stack(redis_url, database_url, namespace) as (stack, sim):
        job_id = f"{namespace}follower"
        await stack.redis.set(stack.names.job_key(job_id, "plan"), json.dumps([_window(2)]))

        await _run_raw(stack, job_id, start="2024-01-01", end="2024-01-04")

        assert sim.taken() == [_day(2)]
        starts, leases = await _starts_and_leases(stack, job_id)
        assert [(len(s["chunks"]), s["skipped_chunks"]) for s in starts] == [(1, 2)]
        assert leases == []


async def test_a_full_job_with_no_chunk_pins_its_empty_plan_with_its_ending(
    redis_url: str, database_url: str, namespace: str
) -> None:
    """A weekend of minute bars plans no chunk: the start and the success go out in one step
    that pins the empty plan, and a plan another delivery pinned first is followed instead."""
    weekend = {"start": "2024-01-06", "end": "2024-01-08"}
    async with counting_stack(redis_url, database_url, namespace) as (stack, sim):
        alone = f"{namespace}weekend"
        done = await _run_raw(stack, alone, **weekend)
        assert (done["progress"]["chunks_total"], sim.taken()) == (0, [])
        assert await stack.redis.get(stack.names.job_key(alone, "plan")) == b"[]"

        follower = f"{namespace}follower"
        await stack.redis.set(stack.names.job_key(follower, "plan"), json.dumps([_window(2)]))
        done = await _run_raw(stack, follower, **weekend)
        assert (done["progress"]["chunks_total"], sim.taken()) == (1, [_day(2)])
        starts, leases = await _starts_and_leases(stack, follower)
        assert ([len(s["chunks"]) for s in starts], leases) == ([1], [])
