"""A2 throughput: many one-chunk jobs, submitted at once, until every one is projected.

`throughput_jobs` jobs of one weekday (390 bars each) are published through the client library
on Redis, 32 submits in flight, while the workers (N processes, one job at a time each) run
them. The clock runs from the first submit to the moment the projection shows every job as
succeeded (polled every 50 ms, which bounds the resolution).
"""

from __future__ import annotations

import asyncio
import time

from backfill_bench.context import Context
from backfill_bench.jobs import SIM_OPTIONS, JobShape, check_jobs, wait_succeeded
from backfill_bench.results import Metric, Run, Target, Workload

SHAPE = JobShape(weekdays=1)
IN_FLIGHT = 32


def workload(ctx_note: str) -> Workload:
    return Workload(
        "A2",
        "throughput (one-chunk jobs)",
        f"{ctx_note}; first submit -> all projected succeeded (polled every 50 ms)",
        [Metric("jobs_per_s", "jobs/s", Target(">=", 300))],
    )


async def run(ctx: Context, number: int) -> Run:
    count = ctx.sizes.throughput_jobs
    symbols = [f"T{number}N{n:05d}" for n in range(count)]
    gate = asyncio.Semaphore(IN_FLIGHT)
    async with ctx.client(via_redis=True) as client:

        async def submit(symbol: str) -> str:
            async with gate:
                return await client.submit("sim", symbol, "1m", SHAPE.start, SHAPE.end, SIM_OPTIONS)

        began = time.monotonic()
        job_ids = await asyncio.gather(*(submit(symbol) for symbol in symbols))
        submitted_s = time.monotonic() - began
        progress = await wait_succeeded(ctx.db, job_ids, began=began, timeout_s=60 + count / 5)
    elapsed = progress.timeline[-1][0]
    checked = await check_jobs(ctx.db, job_ids, symbols, SHAPE)
    timeline = [[round(t, 3), done] for t, done, _ in progress.timeline]
    return Run(
        {"jobs_per_s": count / elapsed, "seconds": elapsed, "submit_s": submitted_s},
        {"timeline": timeline},
        checked,
    )
