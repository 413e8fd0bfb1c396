"""C1 and C2: the issue's Celery column, measured in the same run, on the same Redis and database.

The issue compares each workload with "Celery 5 + Redis, same machine, same method", but its
figures came from another machine (its redis floor was 0.14 ms; here it is 0.3-0.8 ms). These
two workloads measure Celery here instead, with the same shapes and clocks as A1 and A2:

- C1 dispatch: `dispatch_jobs` one-weekday jobs at `dispatch_rate`, each published with
  `send_task`; the clock is read right before it, the end is the time the task body began
  (returned by the task: same machine, same clock), as A1 ends at the worker's started event.
- C2 throughput: `throughput_jobs` such jobs published at once; from the first publish until
  the result backend holds every one as SUCCESS (polled every 50 ms), as A2 polls its
  projection.

Celery runs its prefork pool with `workers` processes and its defaults otherwise (a task is
acked when received, 4 prefetched per process); the task is in celery_tasks.py. It does much
less than a Backfill job (see there), so these are a floor of what Celery costs, not a
like-for-like product. Its worker runs only while these workloads do.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from typing import Any

from celery import Celery
from redis.asyncio import Redis

from backfill_bench import celery_tasks
from backfill_bench.context import Context
from backfill_bench.jobs import BenchError, JobShape
from backfill_bench.processes import Service
from backfill_bench.results import Metric, Run, Workload
from backfill_bench.stats import latency_figures

SHAPE = JobShape(weekdays=1)
CELERY_DB = 1  # the stack's Redis, apart from Backfill's keys in db 0
POLL_S = 0.05
READY_TIMEOUT_S = 60.0


def dispatch_workload(note: str) -> Workload:
    return Workload(
        "C1",
        "Celery dispatch (send_task -> task body)",
        f"{note}; clock before send_task -> the time the task began (µs clocks)",
        [
            Metric("p50_ms", "p50 ms", None, ("F1", "p50_ms")),
            Metric("p99_ms", "p99 ms", None, ("F1", "p99_ms")),
        ],
    )


def throughput_workload(note: str) -> Workload:
    return Workload(
        "C2",
        "Celery throughput (one-chunk jobs)",
        f"{note}; first send_task -> every result SUCCESS (polled every 50 ms)",
        [Metric("jobs_per_s", "jobs/s")],
    )


class CeleryBaseline:
    """Use as `async with CeleryBaseline(ctx) as celery:`; its worker runs inside the block."""

    def __init__(self, ctx: Context) -> None:
        stack = ctx.stack
        self.ctx = ctx
        self.url = stack.redis_url.rsplit("/", 1)[0] + f"/{CELERY_DB}"
        self.app = Celery("backfill_bench", broker=self.url, backend=self.url, set_as_current=False)
        self.results = Redis.from_url(self.url)
        argv = ["celery", "--broker", self.url, "--result-backend", self.url]
        argv += ["-A", celery_tasks.__name__, "worker", "--pool", "prefork"]
        argv += ["--concurrency", str(ctx.sizes.workers), "--loglevel", "WARNING"]
        env = stack.env(**{celery_tasks.DSN_ENV: stack.dsn})
        self.worker = Service.python("celery-worker", argv, env, stack.logs)

    async def __aenter__(self) -> CeleryBaseline:
        await self.ctx.db.execute(celery_tasks.CREATE_TABLE)
        await self.worker.start()
        try:
            # A job per pool process, waited for: the worker is up and each process connected.
            warm = [f"CW{n}" for n in range(self.ctx.sizes.workers * 2)]
            await self.wait(self.publish(warm), READY_TIMEOUT_S)
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    async def stop(self) -> None:
        await self.worker.stop()
        await self.results.aclose()
        self.app.close()

    def publish(self, symbols: Sequence[str]) -> list[str]:
        return [self.send(symbol) for symbol in symbols]

    def send(self, symbol: str) -> str:
        args = [symbol, SHAPE.start.isoformat(), SHAPE.end.isoformat()]
        task_id: str = self.app.send_task(celery_tasks.COLLECT, args=args).id
        return task_id

    async def wait(self, task_ids: Sequence[str], timeout_s: float) -> list[dict[str, Any]]:
        """Every task's result once all succeeded (polled every POLL_S); BenchError if one
        failed, the worker died, or time ran out. Each poll reads only the results not seen
        yet, so polling costs the machine little while Celery is measured."""
        keys = [f"celery-task-meta-{task_id}" for task_id in task_ids]
        results: dict[str, dict[str, Any]] = {}
        deadline = time.monotonic() + timeout_s
        while True:
            pending = [key for key in keys if key not in results]
            for key, raw in zip(pending, await self.results.mget(pending), strict=True):
                if raw is None:
                    continue  # not ended yet: Celery stores no state before the end
                meta = json.loads(raw)
                if meta["status"] != "SUCCESS":
                    raise BenchError(f"a Celery task did not succeed: {meta}")
                results[key] = meta["result"]
            if len(results) == len(keys):
                return [results[key] for key in keys]
            if not self.worker.running:
                raise BenchError(f"the Celery worker exited:\n{self.worker.tail()}")
            if time.monotonic() > deadline:
                raise BenchError(
                    f"only {len(results)} of {len(keys)} Celery tasks in {timeout_s:g} s"
                )
            await asyncio.sleep(POLL_S)

    async def check_bars(self, symbols: Sequence[str]) -> dict[str, int]:
        """Every job's bars in the table, as `check_jobs` checks A2's."""
        stored = await self.ctx.db.fetchval(
            f"SELECT count(*) FROM {celery_tasks.BARS_TABLE} WHERE symbol = ANY($1::text[])",
            list(symbols),
        )
        expected = len(set(symbols)) * SHAPE.bars
        if stored != expected:
            raise BenchError(f"expected {expected} Celery bars in the table, found {stored}")
        return {"jobs": len(symbols), "bars_in_table": int(stored)}


async def dispatch(celery: CeleryBaseline, number: int) -> Run:
    sizes = celery.ctx.sizes
    count, rate = sizes.dispatch_jobs, sizes.dispatch_rate
    symbols = [f"CD{number}N{n:04d}" for n in range(count)]
    sent: list[tuple[str, float]] = []
    began = time.monotonic()
    for n, symbol in enumerate(symbols):
        await asyncio.sleep(max(0.0, began + n / rate - time.monotonic()))
        clock = time.time()
        sent.append((celery.send(symbol), clock))
    results = await celery.wait([task_id for task_id, _ in sent], 120)
    latencies = [
        (result["started"] - clock) * 1000 for result, (_, clock) in zip(results, sent, strict=True)
    ]
    checked = await celery.check_bars(symbols)
    return Run(latency_figures(latencies), {"latency_ms": latencies}, checked)


async def throughput(celery: CeleryBaseline, number: int) -> Run:
    count = celery.ctx.sizes.throughput_jobs
    symbols = [f"CT{number}N{n:05d}" for n in range(count)]
    began = time.monotonic()
    task_ids = celery.publish(symbols)  # Celery's client is synchronous: one after another
    submitted_s = time.monotonic() - began
    await celery.wait(task_ids, 60 + count / 5)
    elapsed = time.monotonic() - began
    checked = await celery.check_bars(symbols)
    figures = {"jobs_per_s": count / elapsed, "seconds": elapsed, "submit_s": submitted_s}
    return Run(figures, {}, checked)
