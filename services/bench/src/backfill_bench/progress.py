"""A4 progress: a `chunk.collected` event to the projection showing it, as the API reads it.

Jobs of `progress_chunks` weekdays are submitted at a steady rate (the sim at zero latency, so
a job's chunks follow each other as fast as a worker goes). Meanwhile the bench tails the
projection: every ~1 ms it reads each running job's chunks with the read model's own query
(`queries.job_chunks_of`, what `GET /jobs/{id}/chunks` serves) and notes when each chunk is
first seen done. The latency is that moment minus the `ts` the worker stamped on the event.
The resolution is one polling cycle (its mean is reported as `poll_ms`).

Its share from the event's entry on the log (the id's milliseconds) to the same read is
reported too (`log_p50_ms`): the projector's part, waiting behind the batches before it
included, without the worker's. Measuring it used to take a throw-away script (issue #9).
"""

from __future__ import annotations

import asyncio
import time

from backfill_bench.context import Context
from backfill_bench.events import EventWatcher
from backfill_bench.jobs import SIM_OPTIONS, BenchError, JobShape, check_jobs, wait_succeeded
from backfill_bench.results import Metric, Run, Target, Workload
from backfill_bench.stats import latency_figures, percentile
from backfill_readmodel import queries

POLL_S = 0.001


def workload(note: str) -> Workload:
    return Workload(
        "A4",
        "progress (event -> projection)",
        f"{note}; chunk.collected ts -> first read done through the read model (~1 ms polls)",
        [
            Metric("p50_ms", "p50 ms", Target("<=", 10), ("F1", "p50_ms")),
            Metric("p99_ms", "p99 ms", Target("<=", 25), ("F1", "p99_ms")),
            Metric("log_p50_ms", "p50 ms from the log (XADD) only"),
            Metric("poll_ms", "poll cycle ms (resolution)"),
        ],
    )


async def run(ctx: Context, number: int) -> Run:
    shape = JobShape(weekdays=ctx.sizes.progress_chunks)
    count, rate = ctx.sizes.progress_jobs, ctx.sizes.progress_rate
    symbols = [f"P{number}N{n:03d}" for n in range(count)]
    seen: dict[tuple[str, int], float] = {}
    watching: set[str] = set()
    submitted: list[str] = []
    polls = 0
    submitting = True

    async def tail() -> None:
        nonlocal polls
        async with ctx.stack.engine.connect() as conn:
            # Autocommit: each query sees the latest commit, with no BEGIN/COMMIT round trips.
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            while submitting or watching:
                for job_id in list(watching):
                    for chunk in await queries.job_chunks_of(conn, job_id):
                        if chunk.status == "done" and (job_id, chunk.chunk) not in seen:
                            seen[(job_id, chunk.chunk)] = time.time()
                    if sum(1 for key in seen if key[0] == job_id) == shape.chunks:
                        watching.discard(job_id)
                polls += 1
                await asyncio.sleep(POLL_S)

    async with (
        EventWatcher(ctx.stack.redis_url, ctx.stack.names, {"chunk.collected"}) as watcher,
        ctx.client(via_redis=True) as client,
    ):
        tailing = asyncio.create_task(tail())
        began = time.monotonic()
        for n, symbol in enumerate(symbols):
            await asyncio.sleep(max(0.0, began + n / rate - time.monotonic()))
            job_id = await client.submit("sim", symbol, "1m", shape.start, shape.end, SIM_OPTIONS)
            submitted.append(job_id)
            watching.add(job_id)
        await wait_succeeded(ctx.db, submitted, began=began, timeout_s=120)
        submitting = False
        await asyncio.wait_for(tailing, 10)
        tailed_s = time.monotonic() - began
        keys = [("chunk.collected", j, c) for j in submitted for c in range(shape.chunks)]
        await watcher.wait_for(keys, 10)
    unseen = [(j, c) for _, j, c in keys if (j, c) not in seen]
    if unseen:
        raise BenchError(f"{len(unseen)} chunks never showed done, e.g. {unseen[0]}")
    latencies = [(seen[(j, c)] - watcher.stamped[(t, j, c)]) * 1000 for t, j, c in keys]
    from_log = [(seen[(j, c)] - watcher.logged[(t, j, c)]) * 1000 for t, j, c in keys]
    checked = await check_jobs(ctx.db, submitted, symbols, shape)
    figures = latency_figures(latencies) | {
        "log_p50_ms": percentile(from_log, 50),
        "poll_ms": tailed_s * 1000 / max(polls, 1),
    }
    return Run(figures, {"latency_ms": latencies, "log_latency_ms": from_log}, checked)
