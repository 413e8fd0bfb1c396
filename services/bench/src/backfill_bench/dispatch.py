"""A1 dispatch: a command published to the worker's `job.started` event.

Jobs of one weekday (one 390-bar chunk) are submitted at a steady rate, one at a time, through
the client library: once publishing on Redis, once through the API's `POST /api/v1/jobs`. The
clock is read right before each submit; the end is the `ts` the worker stamped on the job's
`job.started` event (read from the log, same machine, same clock). Resolution: microseconds.
"""

from __future__ import annotations

import asyncio
import time

from backfill_bench.context import Context
from backfill_bench.events import EventWatcher
from backfill_bench.jobs import SIM_OPTIONS, JobShape, check_jobs, wait_succeeded
from backfill_bench.results import Metric, Run, Target, Workload
from backfill_bench.stats import latency_figures

SHAPE = JobShape(weekdays=1)
PATHS = {"redis": "client library -> Redis", "http": "client library -> HTTP POST /jobs"}


def workload(path: str, sizes_note: str) -> Workload:
    return Workload(
        f"A1-{path}",
        f"dispatch ({PATHS[path]})",
        f"{sizes_note}; clock before submit -> the worker's job.started ts (µs clocks)",
        [
            Metric("p50_ms", "p50 ms", Target("<=", 2), ("F1", "p50_ms")),
            Metric("p99_ms", "p99 ms", Target("<=", 5), ("F1", "p99_ms")),
        ],
    )


async def run(ctx: Context, path: str, number: int) -> Run:
    count, rate = ctx.sizes.dispatch_jobs, ctx.sizes.dispatch_rate
    symbols = [f"D{path[0].upper()}{number}N{n:04d}" for n in range(count)]
    sent: dict[str, float] = {}
    async with (
        EventWatcher(ctx.stack.redis_url, ctx.stack.names, {"job.started"}) as watcher,
        ctx.client(via_redis=path == "redis") as client,
    ):
        began = time.monotonic()
        for n, symbol in enumerate(symbols):
            await asyncio.sleep(max(0.0, began + n / rate - time.monotonic()))
            clock = time.time()
            job_id = await client.submit("sim", symbol, "1m", SHAPE.start, SHAPE.end, SIM_OPTIONS)
            sent[job_id] = clock
        await watcher.wait_for([("job.started", job_id, -1) for job_id in sent], 60)
    latencies = [
        (watcher.stamped[("job.started", job_id, -1)] - clock) * 1000
        for job_id, clock in sent.items()
    ]
    await wait_succeeded(ctx.db, list(sent), began=began, timeout_s=120)
    checked = await check_jobs(ctx.db, list(sent), symbols, SHAPE)
    return Run(latency_figures(latencies), {"latency_ms": latencies}, checked)
