"""The synthetic source: plans like a real one, returns deterministic bars, fails on request."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime, timedelta

from backfill_contracts import (
    BarBatch,
    BarSize,
    ChunkSpec,
    CollectBars,
    Outcome,
    SimOptions,
)
from backfill_contracts.limits import SIM_YEARS_PER_CHUNK
from backfill_sim import calendar
from backfill_sim.prices import sim_bars
from backfill_worker.source import FetchRequest, Plan, SourceError

INVALID_SYMBOL = "INVALID"  # the one symbol the sim refuses, to exercise the failure path
PRICE_TYPE = "trades"


def _options(job: CollectBars) -> SimOptions:
    try:
        return SimOptions.model_validate(job.options)
    except ValueError as error:  # pydantic's ValidationError is a ValueError
        raise SourceError(Outcome.INVALID_REQUEST, f"invalid sim options: {error}") from error


def _check_symbol(job: CollectBars) -> None:
    if job.symbol == INVALID_SYMBOL:
        message = f"unknown symbol {job.symbol!r}: the sim source has no such symbol"
        raise SourceError(Outcome.INVALID_SYMBOL, message)


def _intraday_windows(start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """One window per trading day in range: the day's UTC date, clipped to the range."""
    windows = []
    for day in calendar.trading_days(start, end):
        day_start = calendar.day_start(day)
        windows.append((max(start, day_start), min(end, day_start + timedelta(days=1))))
    return windows


def _coarse_windows(
    bar_size: BarSize, start: datetime, end: datetime
) -> list[tuple[datetime, datetime]]:
    """Calendar-aligned blocks of years (a year, a decade), clipped, keeping those with bars.

    Aligned to the calendar rather than to the job's start, so the same bars always fall in the
    same block whatever range a job asks for.
    """
    years = SIM_YEARS_PER_CHUNK[bar_size]
    first = start.astimezone(UTC).year // years * years
    windows = []
    for year in range(first, end.astimezone(UTC).year + 1, years):
        lo = max(start, datetime(year, 1, 1, tzinfo=UTC))
        hi = min(end, datetime(year + years, 1, 1, tzinfo=UTC))
        # A block holding no bar (say, a weekend's slice) would only fetch nothing.
        if lo < hi and calendar.bar_timestamps(bar_size, lo, hi):
            windows.append((lo, hi))
    return windows


class SimSource:
    """The `sim` source: deterministic bars, with latency and transient faults on request."""

    @property
    def name(self) -> str:
        return "sim"

    def series_of(self, job: CollectBars) -> tuple[str, str]:
        return job.symbol, PRICE_TYPE

    async def plan(self, job: CollectBars) -> Plan:
        _check_symbol(job)
        _options(job)  # refuse bad options now rather than on every chunk
        if job.bar_size.is_intraday:
            windows = _intraday_windows(job.start, job.end)
        else:
            windows = _coarse_windows(job.bar_size, job.start, job.end)
        chunks = [
            ChunkSpec(index=index, start=lo, end=hi) for index, (lo, hi) in enumerate(windows)
        ]
        return Plan(price_type=PRICE_TYPE, chunks=chunks)

    async def fetch(self, request: FetchRequest) -> BarBatch:
        job, chunk = request.job, request.chunk
        _check_symbol(job)
        options = _options(job)
        if options.latency_ms:
            await asyncio.sleep(options.latency_ms / 1000)
        every = options.fail_every
        if every > 0 and (chunk.index + 1) % every == 0 and request.try_number == 1:
            raise SourceError(
                Outcome.UPSTREAM_ERROR,
                f"chunk {chunk.index}: simulated transient failure (fail_every={every}); "
                "the next try succeeds",
            )
        if _bars_at_most(job.bar_size, chunk) <= _INLINE_BARS:
            return sim_bars(job.symbol, job.bar_size, chunk.start, chunk.end)
        # In a thread: long enough to build to stall heartbeats (see _INLINE_BARS).
        return await asyncio.to_thread(sim_bars, job.symbol, job.bar_size, chunk.start, chunk.end)


# An intraday chunk of at most this many bar slots is built on the event loop: a day of 1m bars
# takes ~0.2 ms, a day of 5s bars (17,280 slots) ~1.3 ms, and the hop to a thread and back cost
# more than the first (issue #9's A3 profile). Days of 1s bars (~8 ms) and coarse blocks (30
# years of daily bars: ~100 ms) still go to a thread, not to stall heartbeats.
_INLINE_BARS = 17_280


def _bars_at_most(bar_size: BarSize, chunk: ChunkSpec) -> float:
    """An upper bound on an intraday chunk's bar count (its window at the bar size, closed or
    not); infinite for coarse bars, whose build time depends on more than their count."""
    duration = bar_size.duration
    if duration is None or not bar_size.is_intraday:
        return math.inf
    return (chunk.end - chunk.start) / duration
