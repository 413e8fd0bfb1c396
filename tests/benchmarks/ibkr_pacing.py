"""Benchmark: IBKR pacing at the speed of light, by several worker processes, with no violation.

    uv run --no-sync python -m tests.benchmarks.ibkr_pacing [--workers 3] [--days 16]
        [--scale 0.01] [--json FILE]

A backfill of 1-second bars (IB allows 30 minutes of them per request) for three symbols,
split into jobs, collected by N real `backfill-ibkr-worker` processes from the fake TWS, which
enforces IB's rules with every window scaled by `--scale`. It prints the requests, the pacing
violations the gateway saw, and the requests served in each full 10-minute window (scaled)
against IB's limit of 60: most downloaders either break the limit or stay far below it.
The figures come from the gateway's own receipt times, not from the workers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from backfill_bus import CommandBus, Names, body_of
from backfill_contracts import BarRequest, BarSize, parse_event
from backfill_ibkr.pacing import DEFAULT_RULES
from tests.support.fake_tws import FakeGateway
from tests.support.servers import RedisServer

LIMIT = 60  # IB: at most 60 historical requests in any 10 minutes (bars of 30 s or less)
WINDOW_S = 600.0
SYMBOLS = ("AAPL", "MSFT", "SPY")
NAMESPACE = "bench:"


def weekdays(first: date, count: int) -> list[date]:
    days: list[date] = []
    day = first
    while len(days) < count:
        if day.weekday() < 5:
            days.append(day)
        day += timedelta(days=1)
    return days


def jobs_for(days: list[date]) -> list[BarRequest]:
    """One job per symbol and trading day: 13 requests of 30 minutes (14:30-21:00 UTC)."""
    return [
        BarRequest(
            source="ibkr",
            symbol=SYMBOLS[n % len(SYMBOLS)],
            bar_size=BarSize.S1,
            start=datetime(day.year, day.month, day.day, 14, 30, tzinfo=UTC),
            end=datetime(day.year, day.month, day.day, 21, 0, tzinfo=UTC),
        )
        for n, day in enumerate(days)
    ]


def start_worker(number: int, redis_url: str, port: int, scale: float, log: Path) -> Any:
    env = os.environ | {
        "BACKFILL_REDIS_URL": redis_url,
        "BACKFILL_REDIS_NAMESPACE": NAMESPACE,
        "BACKFILL_WORKER_ID": f"bench-ibkr-{number}",
        "BACKFILL_IBKR_PORT": str(port),
        "BACKFILL_IBKR_PACING_SCALE": str(scale),
        "BACKFILL_HEARTBEAT_INTERVAL_S": "1",
    }
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "backfill_ibkr"], env=env, stdout=out, stderr=subprocess.STDOUT
        )


async def wait_terminal(
    redis: Redis, names: Names, job_ids: set[str], timeout: float
) -> dict[str, str]:
    """Tail the event log (no projector needed) until every job has ended."""
    ended: dict[str, str] = {}
    cursor = "0-0"
    deadline = time.monotonic() + timeout
    while len(ended) < len(job_ids) and time.monotonic() < deadline:
        reply: Any = await redis.xread({names.events: cursor}, count=1000, block=500)
        for _stream, entries in reply or []:
            for entry_id, fields in entries:
                cursor = entry_id
                event = parse_event(body_of(fields))
                job_id = getattr(event, "job_id", None)
                if job_id in job_ids and event.type in ("job.succeeded", "job.failed"):
                    ended[job_id] = event.type
    return ended


def per_window(times: list[float], window: float) -> list[int]:
    """Requests received in consecutive full windows from the first one."""
    if not times:
        return []
    first, last = times[0], times[-1]
    counts = []
    start = first
    while start + window <= last:
        counts.append(sum(1 for t in times if start <= t < start + window))
        start += window
    return counts


async def run(workers: int, days: int, scale: float) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="backfill-bench-ibkr-"))
    redis_server = RedisServer(workdir / "redis")
    redis_server.start()
    gateway = FakeGateway(pacing_scale=scale)
    port = gateway.start()
    redis = Redis.from_url(redis_server.url)
    names = Names(NAMESPACE)
    processes = [
        start_worker(n, redis_server.url, port, scale, workdir / f"worker-{n}.log")
        for n in range(1, workers + 1)
    ]
    try:
        await _all_connected(gateway, workers, timeout=30)
        bus = CommandBus(redis, names, producer="bench")
        requests = jobs_for(weekdays(date(2024, 3, 4), days))
        began = time.monotonic()
        job_ids = {(await bus.submit(request)).job_id for request in requests}
        window = WINDOW_S * scale
        expected = len(requests) * 13
        ended = await wait_terminal(
            redis, names, job_ids, timeout=60 + 2 * expected / LIMIT * window
        )
        elapsed = time.monotonic() - began
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        records = gateway.requests
        violations = gateway.violations
        gateway.stop()
        await redis.aclose()
        redis_server.stop()
    historical = sorted(r.time for r in records if r.kind == "historical")
    counts = per_window(historical, window)
    ratios = [count / LIMIT for count in counts]
    return {
        "workers": workers,
        "pacing_scale": scale,
        "window_s": window,
        "jobs": len(job_ids),
        "jobs_succeeded": sum(1 for kind in ended.values() if kind == "job.succeeded"),
        "historical_requests": len(historical),
        "expected_requests": expected,
        "violations": len(violations),
        "violation_rules": sorted({v.rule for v in violations}),
        "per_client": _per_client(records),
        "full_windows": len(counts),
        "served_per_window": counts,
        "served_ratio_min": min(ratios) if ratios else None,
        "served_ratio_median": sorted(ratios)[len(ratios) // 2] if ratios else None,
        "elapsed_s": round(elapsed, 2),
        "margin_s": 0.25,
        "governor_rules": [rule.name for rule in DEFAULT_RULES],
    }


async def _all_connected(gateway: FakeGateway, workers: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(gateway.connected_client_ids) >= workers:
            return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{workers} workers did not connect within {timeout:g} s")


def _per_client(records: list[Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for record in records:
        if record.kind == "historical":
            counts[str(record.client_id)] = counts.get(str(record.client_id), 0) + 1
    return counts


def report(result: dict[str, Any]) -> str:
    lines = [
        f"IBKR pacing benchmark: {result['workers']} worker processes, "
        f"windows x{result['pacing_scale']:g} (10 min -> {result['window_s']:g} s)",
        f"  jobs                    {result['jobs_succeeded']}/{result['jobs']} succeeded",
        f"  historical requests     {result['historical_requests']} "
        f"(planned {result['expected_requests']})",
        f"  by client id            {result['per_client']}",
        f"  pacing violations       {result['violations']} {result['violation_rules'] or ''}",
        f"  served per full window  {result['served_per_window']} (limit {LIMIT})",
    ]
    if result["served_ratio_min"] is not None:
        lines.append(
            f"  served / limit          min {result['served_ratio_min']:.1%}, "
            f"median {result['served_ratio_median']:.1%}"
        )
    lines.append(f"  elapsed                 {result['elapsed_s']} s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.ibkr_pacing")
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--days", type=int, default=16, help="16 days x 13 = 208 requests")
    parser.add_argument("--scale", type=float, default=0.01)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    result = asyncio.run(run(args.workers, args.days, args.scale))
    print(report(result))
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2))
    return 0 if result["violations"] == 0 and result["jobs_succeeded"] == result["jobs"] else 1


if __name__ == "__main__":
    sys.exit(main())
