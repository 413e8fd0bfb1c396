"""A7 memory: each service's RSS after warm-up, and its growth over a soak at A3's load.

The workloads before this one are the warm-up. Each run samples every service's resident set
(/proc/<pid>/status VmRSS) once a second while batches shaped like A3 (`ingest_jobs` jobs of
`ingest_chunks` chunks) run back to back for `soak_s` seconds, their ends awaited through the
API (`GET /api/v1/jobs/{id}`) so the API works too. A batch reuses the same symbols, so the
bars are upserted again rather than growing the table without end. Growth is per service,
the median RSS of the soak's last minute against that of its first (`stats.window_growth_pct`:
an RSS saws with the batches, so two single samples compare the saw's phase, not its level);
the last sample against the first is kept in the notes as `growth_endpoints_pct`.
"""

from __future__ import annotations

import asyncio
import time

from backfill_bench.context import Context
from backfill_bench.ingest import submit_batch
from backfill_bench.jobs import BenchError, JobShape, check_jobs
from backfill_bench.processes import rss_mb
from backfill_bench.results import Metric, Run, Target, Workload
from backfill_bench.stats import window_growth_pct

SAMPLE_S = 1.0
GROWTH_WINDOW_S = 60.0  # at most: a fifth of a shorter soak


def workload(note: str) -> Workload:
    return Workload(
        "A7",
        "memory (RSS, soak at A3 load)",
        f"{note}; VmRSS of every service once a second",
        [
            Metric("worker_rss_mb", "worker RSS MB (max)", Target("<=", 150)),
            Metric("projector_rss_mb", "projector RSS MB"),
            Metric("api_rss_mb", "API RSS MB"),
            Metric("growth_pct", "growth % (max; medians, first vs last minute)", Target("<", 5)),
        ],
    )


def _sample(ctx: Context) -> dict[str, float]:
    ctx.stack.check_alive()
    return {
        name: rss_mb(service.pid) for name, service in ctx.stack.services.items() if name != "redis"
    }


async def run(ctx: Context, number: int) -> Run:
    shape = JobShape(weekdays=ctx.sizes.ingest_chunks)
    symbols = [f"M{n:03d}" for n in range(ctx.sizes.ingest_jobs)]
    timeline: list[tuple[float, dict[str, float]]] = []
    stop = asyncio.Event()

    async def sample() -> None:
        began = time.monotonic()
        while True:
            timeline.append((round(time.monotonic() - began, 2), _sample(ctx)))
            if stop.is_set():
                return
            await asyncio.sleep(SAMPLE_S)

    sampler = asyncio.create_task(sample())
    batches = 0
    deadline = time.monotonic() + ctx.sizes.soak_s
    async with ctx.client(via_redis=False) as client:
        while time.monotonic() < deadline or batches == 0:
            # The same symbols batch after batch: forced, or every batch after the first would
            # find its bars stored and fetch nothing.
            job_ids = await submit_batch(ctx, symbols, shape, force=True)
            for job_id in job_ids:
                job = await client.wait(job_id, timeout=600, poll_interval_s=0.2)
                if job.status != "succeeded":
                    raise BenchError(f"soak job {job_id} ended {job.status}: {job.error}")
            batches += 1
    stop.set()
    await sampler
    checked = await check_jobs(ctx.db, job_ids, symbols, shape)
    first, last = timeline[0][1], timeline[-1][1]
    window_s = min(GROWTH_WINDOW_S, timeline[-1][0] / 5) or SAMPLE_S
    growth = {
        name: window_growth_pct([(t, rss[name]) for t, rss in timeline], window_s) for name in first
    }
    endpoints = {name: (last[name] - first[name]) / first[name] * 100 for name in first}
    workers = [name for name in first if name.startswith("sim-worker")]
    figures = {
        "worker_rss_mb": max(first[name] for name in workers),
        "projector_rss_mb": first["projector"],
        "api_rss_mb": first["api"],
        "growth_pct": max(growth.values()),
        "soak_s": timeline[-1][0],
    }
    return Run(
        figures,
        {"rss_mb": [[t, rss] for t, rss in timeline]},
        checked
        | {
            "batches": batches,
            "growth_pct": growth,
            "growth_window_s": window_s,
            "growth_endpoints_pct": endpoints,
            "rss_after_warmup_mb": first,
        },
    )
