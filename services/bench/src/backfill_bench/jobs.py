"""Sim jobs of known sizes, and waiting for them in the projection (with their counts checked).

The sim plans one chunk per trading day for 1-minute bars: every weekday (no holidays) is a
session of 390 bars, 09:30-16:00 New York, inside one UTC date. So a job over N weekdays is N
chunks and N x 390 bars; `check_jobs` asserts exactly that from the projection and the bars
table, since a benchmark that measured the wrong amount of work would be worthless.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg

BARS_PER_SESSION = 390
TERMINAL = ("succeeded", "failed", "cancelled")
# Zero latency and no faults: the sim answers as fast as it can build the bars.
SIM_OPTIONS: dict[str, Any] = {"latency_ms": 0, "fail_every": 0}
FIRST_DAY = date(2024, 1, 1)  # a Monday


class BenchError(Exception):
    """Raised when a workload did not do what it was meant to (a job failed, a count is off)."""


@dataclass(frozen=True, slots=True)
class JobShape:
    """`weekdays` 1-minute sessions from `first_day` (a Monday): one chunk per weekday."""

    weekdays: int
    first_day: date = FIRST_DAY

    @property
    def chunks(self) -> int:
        return self.weekdays

    @property
    def bars(self) -> int:
        return self.weekdays * BARS_PER_SESSION

    @property
    def start(self) -> datetime:
        return datetime(self.first_day.year, self.first_day.month, self.first_day.day, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        """Midnight UTC after the last weekday: the range holds exactly `weekdays` sessions."""
        return self.start + timedelta(days=_calendar_days(self.first_day, self.weekdays))


def _calendar_days(first: date, weekdays: int) -> int:
    if first.weekday() >= 5:
        raise ValueError(f"{first} is not a weekday")
    days = counted = 0
    while counted < weekdays:
        if (first + timedelta(days=days)).weekday() < 5:
            counted += 1
        days += 1
    return days


@dataclass(slots=True)
class Progress:
    """What a wait saw: (seconds since it began, jobs succeeded, bars stored) samples."""

    began: float
    timeline: list[tuple[float, int, int]]


async def wait_succeeded(
    conn: asyncpg.Connection,
    job_ids: Sequence[str],
    *,
    began: float,
    timeout_s: float,
    interval_s: float = 0.05,
) -> Progress:
    """Poll the projection until every job has succeeded; raise BenchError if one did not.

    `began` is the time.monotonic() the workload started at: the timeline counts from it.
    """
    ids = list(job_ids)
    progress = Progress(began, [])
    deadline = time.monotonic() + timeout_s
    while True:
        # A join, not `job_id = ANY($1)`: on a table without statistics yet PostgreSQL ran that
        # as a scan comparing every row with each id, 29 ms per poll of 1,000 ids in A2, about
        # a third of a core taken from the stack being measured.
        rows = await conn.fetch(
            "SELECT j.status, count(*) AS n, coalesce(sum(j.bars_stored), 0) AS bars"
            " FROM unnest($1::text[]) AS wanted(job_id) JOIN jobs j USING (job_id)"
            " GROUP BY j.status",
            ids,
        )
        by_status = {row["status"]: (int(row["n"]), int(row["bars"])) for row in rows}
        done = by_status.get("succeeded", (0, 0))[0]
        progress.timeline.append(
            (time.monotonic() - began, done, sum(b for _, b in by_status.values()))
        )
        ended = sum(by_status.get(status, (0, 0))[0] for status in TERMINAL)
        if ended > done:
            raise BenchError(f"{ended - done} of {len(ids)} jobs did not succeed: {by_status}")
        if done == len(ids):
            return progress
        if time.monotonic() > deadline:
            raise BenchError(f"only {done} of {len(ids)} jobs succeeded in {timeout_s:g} s")
        await asyncio.sleep(interval_s)


async def check_jobs(
    conn: asyncpg.Connection, job_ids: Sequence[str], symbols: Sequence[str], shape: JobShape
) -> dict[str, int]:
    """Assert every job planned `shape.chunks` chunks and stored `shape.bars` bars, in the
    projection and in the bars table itself; returns the counts checked."""
    rows = await conn.fetch(
        "SELECT chunks_total, chunks_done, bars_stored FROM jobs WHERE job_id = ANY($1::text[])",
        list(job_ids),
    )
    wrong = [
        dict(row)
        for row in rows
        if (row["chunks_total"], row["chunks_done"], row["bars_stored"])
        != (shape.chunks, shape.chunks, shape.bars)
    ]
    if len(rows) != len(job_ids) or wrong:
        raise BenchError(
            f"expected {len(job_ids)} jobs of {shape.chunks} chunks and {shape.bars} bars;"
            f" found {len(rows)} jobs, wrong ones: {wrong[:3]}"
        )
    stored = await conn.fetchval(
        "SELECT count(*) FROM bars WHERE source = 'sim' AND symbol = ANY($1::text[])"
        " AND bar_size = '1m' AND price_type = 'trades' AND ts >= $2 AND ts < $3",
        list(symbols),
        shape.start,
        shape.end,
    )
    expected = len(set(symbols)) * shape.bars
    if stored != expected:
        raise BenchError(f"expected {expected} bars in the table, found {stored}")
    return {"jobs": len(rows), "chunks_per_job": shape.chunks, "bars_in_table": int(stored)}
