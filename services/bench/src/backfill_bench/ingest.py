"""A3 ingest: long jobs end to end into PostgreSQL, in bars per second.

`ingest_jobs` jobs of `ingest_chunks` weekdays each (390 bars a chunk) are submitted at once
through the client library; the clock runs from the first submit until the projection shows
every job succeeded (polled every 50 ms). The figure is compared with the COPY floor (F2).
"""

from __future__ import annotations

import time

from backfill_bench.context import Context
from backfill_bench.jobs import SIM_OPTIONS, JobShape, check_jobs, wait_succeeded
from backfill_bench.results import Metric, Run, Target, Workload


def workload(note: str) -> Workload:
    return Workload(
        "A3",
        "ingest into PostgreSQL",
        f"{note}; first submit -> all projected succeeded (polled every 50 ms)",
        [Metric("bars_per_s", "bars/s", Target(">=", 200_000), ("F2", "rows_per_s"))],
    )


async def submit_batch(
    ctx: Context, symbols: list[str], shape: JobShape, *, force: bool = False
) -> list[str]:
    """`force`: collect again bars already stored (workers skip stored chunks otherwise)."""
    async with ctx.client(via_redis=True) as client:
        return [
            await client.submit(
                "sim", symbol, "1m", shape.start, shape.end, SIM_OPTIONS, force=force or None
            )
            for symbol in symbols
        ]


async def run(ctx: Context, number: int) -> Run:
    shape = JobShape(weekdays=ctx.sizes.ingest_chunks)
    symbols = [f"I{number}N{n:03d}" for n in range(ctx.sizes.ingest_jobs)]
    began = time.monotonic()
    job_ids = await submit_batch(ctx, symbols, shape)
    progress = await wait_succeeded(ctx.db, job_ids, began=began, timeout_s=600)
    elapsed = progress.timeline[-1][0]
    checked = await check_jobs(ctx.db, job_ids, symbols, shape)
    bars = len(job_ids) * shape.bars
    timeline = [[round(t, 3), stored] for t, _, stored in progress.timeline]
    return Run(
        {"bars_per_s": bars / elapsed, "seconds": elapsed, "bars": bars},
        {"timeline": timeline},
        checked,
    )
