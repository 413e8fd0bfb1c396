"""The floors: what the bare parts do on this machine, measured in the same run as the stack.

- Redis: raw redis-py, a consumer blocked in XREADGROUP on a stream of its own, and a producer
  that XADDs an entry carrying the wall clock read just before; the latency is the consumer's
  clock on receipt minus that. No FastStream, no JSON, no pydantic: the least any dispatch or
  progress path can cost.
- PostgreSQL: asyncpg COPY of 10,000-row batches into a table shaped and indexed like the bars
  (`bar_rows`)
  (its primary key), one statement per batch: the most rows per second any ingest can store.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from uuid import uuid4

import asyncpg
from redis.asyncio import Redis

from backfill_bench import synthetic
from backfill_bench.results import Metric, Run, Workload
from backfill_bench.stats import latency_figures

COPY_BATCH_ROWS = 10_000
REDIS_GAP_S = 0.01  # between entries: the consumer is blocked again before the next one


def redis_workload() -> Workload:
    return Workload(
        "F1",
        "floor: Redis XADD -> blocked XREADGROUP",
        "raw redis-py in one process; wall clock before XADD to wall clock on receipt",
        [Metric("p50_ms", "p50 ms"), Metric("p99_ms", "p99 ms")],
    )


def copy_workload() -> Workload:
    return Workload(
        "F2",
        "floor: asyncpg COPY into indexed bars",
        f"COPY of {COPY_BATCH_ROWS:,}-row batches into a fresh table LIKE bar_rows (its key)",
        [Metric("rows_per_s", "rows/s")],
    )


async def redis_floor(redis_url: str, samples: int) -> Run:
    stream, group = f"bench:floor:{uuid4().hex[:8]}", "floor"
    producer, consumer = Redis.from_url(redis_url), Redis.from_url(redis_url)
    latencies: list[float] = []
    try:
        await producer.xgroup_create(stream, group, id="$", mkstream=True)

        async def consume() -> None:
            while len(latencies) < samples:
                reply: Any = await consumer.xreadgroup(group, "c", {stream: ">"}, count=1, block=0)
                received = time.time()
                for _name, entries in reply or ():
                    for _entry_id, fields in entries:
                        latencies.append((received - float(fields[b"t"])) * 1000)

        task = asyncio.create_task(consume())
        for _ in range(samples):
            await asyncio.sleep(REDIS_GAP_S)
            await producer.xadd(stream, {"t": repr(time.time())})
        await asyncio.wait_for(task, timeout=30)
        await producer.delete(stream)
    finally:
        await producer.aclose()
        await consumer.aclose()
    return Run(latency_figures(latencies), {"latency_ms": latencies})


async def copy_floor(dsn: str, batches: int) -> Run:
    """Rows per second of `batches` COPYs; the rows are made before the clock starts."""
    total = batches * COPY_BATCH_ROWS
    series_ids = range(1, synthetic.series_for(total) + 1)  # no series rows: nothing joins them
    prepared = list(synthetic.batches(series_ids, total, COPY_BATCH_ROWS))
    table = f"bench_floor_{uuid4().hex[:8]}"
    conn = await asyncpg.connect(dsn)
    seconds: list[float] = []
    try:
        await conn.execute(f"CREATE TABLE {table} (LIKE bar_rows INCLUDING ALL)")
        began = time.perf_counter()
        for batch in prepared:
            start = time.perf_counter()
            await conn.copy_records_to_table(table, records=batch, columns=synthetic.BAR_COLUMNS)
            seconds.append(time.perf_counter() - start)
        elapsed = time.perf_counter() - began
        await conn.execute(f"DROP TABLE {table}")
    finally:
        await conn.close()
    rows = sum(len(batch) for batch in prepared)
    timeline = [[sum(seconds[: i + 1]), (i + 1) * COPY_BATCH_ROWS] for i in range(len(seconds))]
    return Run(
        {"rows_per_s": rows / elapsed, "seconds": elapsed},
        {"batch_s": seconds, "timeline": timeline},
        {"rows": rows},
    )
