"""Runs the floors and the workloads in order on one stack, then writes the report and charts."""

from __future__ import annotations

import asyncio
import os
import platform
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import asyncpg

from backfill_bench import (
    celery_baseline,
    console,
    dispatch,
    floors,
    ingest,
    memory,
    plots,
    progress,
    read,
    report,
    throughput,
)
from backfill_bench.context import Context
from backfill_bench.results import Run, Workload
from backfill_bench.sizes import Sizes
from backfill_bench.stack import BenchStack


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


async def repeat(workload: Workload, runs: int, once: Callable[[int], Awaitable[Run]]) -> Workload:
    """Run a workload `runs` times; an error ends it (noted in the table), not the bench."""
    for number in range(1, runs + 1):
        began = time.monotonic()
        try:
            result = await once(number)
        except Exception as error:  # reported in the table and the JSON; the bench goes on
            workload.skipped = f"error: {type(error).__name__}: {error}"[:300]
            say(f"{workload.id} run {number}/{runs}: {workload.skipped}")
            return workload
        workload.runs.append(result)
        shown = ", ".join(
            f"{m.label} {report.number(result.figures[m.key])}"
            for m in workload.metrics
            if m.key in result.figures
        )
        say(f"{workload.id} run {number}/{runs}: {shown} ({time.monotonic() - began:.1f} s)")
    return workload


async def workloads(ctx: Context, only: frozenset[str] = frozenset()) -> list[Workload]:
    """Every workload in order; with `only`, those whose id starts with one of its names."""
    sizes, stack = ctx.sizes, ctx.stack
    runs = sizes.runs
    done: list[Workload] = []

    def wanted(workload_id: str) -> bool:
        return not only or any(workload_id.startswith(name) for name in only)

    if wanted("F1"):
        done.append(
            await repeat(
                floors.redis_workload(),
                runs,
                lambda n: floors.redis_floor(stack.redis_url, sizes.floor_redis_samples),
            )
        )
    if wanted("F2"):
        done.append(
            await repeat(
                floors.copy_workload(),
                runs,
                lambda n: floors.copy_floor(stack.dsn, sizes.floor_copy_batches),
            )
        )
    note = f"{sizes.dispatch_jobs} one-chunk jobs at {sizes.dispatch_rate:g}/s"
    for path in dispatch.PATHS:
        if wanted(f"A1-{path}"):
            workload = dispatch.workload(path, note)
            done.append(await repeat(workload, runs, partial(dispatch.run, ctx, path)))
    if wanted("A2"):
        note = f"{sizes.throughput_jobs} jobs x 1 chunk x 390 bars, {sizes.workers} workers"
        done.append(await repeat(throughput.workload(note), runs, lambda n: throughput.run(ctx, n)))
    if wanted("A3"):
        note = (
            f"{sizes.ingest_jobs} jobs x {sizes.ingest_chunks} chunks x 390 bars,"
            f" {sizes.workers} workers"
        )
        done.append(await repeat(ingest.workload(note), runs, lambda n: ingest.run(ctx, n)))
    if wanted("A4"):
        note = (
            f"{sizes.progress_jobs} jobs x {sizes.progress_chunks} chunks at"
            f" {sizes.progress_rate:g} jobs/s"
        )
        done.append(await repeat(progress.workload(note), runs, lambda n: progress.run(ctx, n)))
    if wanted("A5"):
        done.append(await _console(ctx))
    if wanted("A7"):
        note = f"{sizes.soak_s:g} s soak per run"
        done.append(await repeat(memory.workload(note), runs, lambda n: memory.run(ctx, n)))
    if wanted("A6"):
        done.append(await _read(ctx))
    celery = [w for w in _celery_workloads(sizes) if wanted(w.id)]
    if celery:
        done.extend(await _celery(ctx, celery))
    return done


def _celery_workloads(sizes: Sizes) -> list[Workload]:
    return [
        celery_baseline.dispatch_workload(
            f"{sizes.dispatch_jobs} one-chunk jobs at {sizes.dispatch_rate:g}/s"
        ),
        celery_baseline.throughput_workload(
            f"{sizes.throughput_jobs} jobs x 1 chunk x 390 bars, {sizes.workers} pool processes"
        ),
    ]


async def _celery(ctx: Context, wanted: list[Workload]) -> list[Workload]:
    """The issue's Celery column, measured here: after ours, its own worker only meanwhile."""
    runs = {"C1": celery_baseline.dispatch, "C2": celery_baseline.throughput}
    try:
        async with celery_baseline.CeleryBaseline(ctx) as celery:
            for workload in wanted:
                await repeat(workload, ctx.sizes.runs, partial(runs[workload.id], celery))
    except Exception as error:  # Celery's worker would not start
        for workload in wanted:
            workload.skipped = workload.skipped or f"error: {type(error).__name__}: {error}"[:300]
        say(f"Celery: error: {type(error).__name__}: {error}")
    return wanted


async def _console(ctx: Context) -> Workload:
    sizes = ctx.sizes
    note = (
        f"{sizes.console_jobs} job(s) x {sizes.console_chunks} chunks,"
        f" sim latency {sizes.console_chunk_ms} ms a chunk"
    )
    a5 = console.workload(note)
    a5.skipped = console.unavailable()
    if a5.skipped is None:
        try:
            async with console.Browser(ctx) as browser:
                await repeat(a5, sizes.runs, lambda n: console.run(ctx, browser, n))
        except Exception as error:  # the console or Chromium would not start
            a5.skipped = f"error: {type(error).__name__}: {error}"[:300]
            say(f"A5: {a5.skipped}")
    return a5


async def _read(ctx: Context) -> Workload:
    a6 = read.workload(f"{ctx.sizes.read_table_rows:,}-row bars table")
    say(f"A6: loading the bars table to {ctx.sizes.read_table_rows:,} rows with COPY")
    loaded = await read.load(ctx)
    say(f"A6: loaded in {loaded['load_s']:.1f} s, vacuumed in {loaded['vacuum_s']:.1f} s")
    await repeat(a6, ctx.sizes.runs, lambda n: read.run(ctx, n))
    for run in a6.runs:
        run.notes["table"] = loaded
    return a6


async def run_bench(
    admin_url: str, sizes: Sizes, out: Path, mode: str, only: frozenset[str] = frozenset()
) -> int:
    started = datetime.now(UTC)
    meta: dict[str, Any] = {
        "mode": mode,
        "started": started.isoformat(),
        "machine": {
            "cpus": os.cpu_count(),
            "load_avg_before": os.getloadavg(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "sizes": asdict(sizes),
        "only": sorted(only),
    }
    with tempfile.TemporaryDirectory(prefix="backfill-bench-") as workdir:
        stack = BenchStack(
            admin_url, workers=sizes.workers, workdir=Path(workdir), logs=out / "logs"
        )
        say(f"starting the stack (database {stack.database}, {sizes.workers} sim workers)")
        async with stack:
            db = await asyncpg.connect(stack.dsn)
            try:
                meta["versions"] = {
                    "postgres": await db.fetchval("SHOW server_version"),
                    "redis": (await stack.redis.info("server"))["redis_version"],
                }
                results = await workloads(Context(stack, sizes, db), only)
            finally:
                await db.close()
    meta["finished"] = datetime.now(UTC).isoformat()
    meta["seconds"] = round((datetime.now(UTC) - started).total_seconds(), 1)
    meta["machine"]["load_avg_after"] = os.getloadavg()
    report.write_json(out / "results.json", results, meta)
    charts = plots.draw_all(results, out)
    print(report.table(results))
    print(f"\nHow (every workload {sizes.runs} times; events' ts vs this machine's clock):")
    print(report.methods(results))
    print(f"\n{mode} run in {meta['seconds']:g} s; JSON: {out / 'results.json'}")
    for chart in charts:
        print(f"chart: {chart}")
    failed = [w.id for w in results if w.skipped and w.skipped.startswith("error")]
    return 1 if failed else 0


def main_async(
    admin_url: str, sizes: Sizes, out: Path, mode: str, only: frozenset[str] = frozenset()
) -> int:
    (out / "logs").mkdir(parents=True, exist_ok=True)
    return asyncio.run(run_bench(admin_url, sizes, out, mode, only))
