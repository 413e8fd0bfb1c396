"""Coverage read from the projections: bars for what is held, chunks for why the rest is not.

Computed on read rather than projected: the gaps depend on the calendar asked for and on the
range, and the bars and job_chunks tables already hold every fact (their natural keys make the
lookups index scans). The calendar work runs in a thread, since exchange_calendars is pandas.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

from sqlalchemy import BindParameter, ColumnElement, Select, bindparam, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from backfill_contracts import BarSize
from backfill_readmodel.coverage.calendars import TradingCalendar, calendar_for
from backfill_readmodel.coverage.gaps import ChunkWindow, Gap, GapKind, classify, held_slots
from backfill_readmodel.coverage.slots import HALF_DAY, Slots, expected_slots
from backfill_readmodel.coverage.views import CoverageView, DayView, GapView
from backfill_readmodel.tables import (
    bar_rows,
    job_chunks,
    jobs,
    series_id_of,
    series_symbol_of_job,
)
from backfill_readmodel.tables import series as series_table

FINISHED = ("succeeded", "failed", "cancelled")


@dataclass(frozen=True, slots=True)
class Series:
    source: str
    symbol: str  # the instrument bars are stored under
    bar_size: BarSize
    price_type: str = "trades"


@dataclass(frozen=True, slots=True)
class Held:
    first: datetime | None
    last: datetime | None
    count: int


@dataclass(frozen=True, slots=True)
class Measured:
    """A series measured over a range: its slots, which are held, and the gaps."""

    slots: Slots
    held: list[bool]
    gaps: list[Gap]


def _of(series: Series) -> Any:
    return _bars_of(series.source, series.symbol, series.bar_size.value, series.price_type)


def _bars_of(source: Any, symbol: Any, bar_size: Any, price_type: Any) -> Any:
    """The series' rows in `bar_rows`; each argument a value or a bind parameter."""
    return bar_rows.c.series_id == series_id_of(source, symbol, bar_size, price_type)


async def held(conn: AsyncConnection, series: Series) -> Held:
    query = select(func.min(bar_rows.c.ts), func.max(bar_rows.c.ts), func.count()).where(
        _of(series)
    )
    first, last, count = (await conn.execute(query)).one()
    return Held(first, last, count)


async def list_series(conn: AsyncConnection, limit: int = 200) -> list[tuple[Series, Held]]:
    """Every series with bars, with its first and last bar and count (grouped on the bars'
    primary key prefix, the series id, so an index scan)."""
    named = series_table.c
    key = (named.source, named.symbol, named.bar_size, named.price_type)
    spans = (
        select(
            bar_rows.c.series_id,
            func.min(bar_rows.c.ts).label("first"),
            func.max(bar_rows.c.ts).label("last"),
            func.count().label("count"),
        )
        .group_by(bar_rows.c.series_id)
        .subquery()
    )
    query = (
        select(*key, spans.c.first, spans.c.last, spans.c.count)
        .join_from(spans, series_table, series_table.c.id == spans.c.series_id)
        .order_by(*key)
        .limit(limit)
    )
    found = []
    for source, symbol, bar_size, price_type, first, last, count in await conn.execute(query):
        if bar_size in BarSize.__members__.values():
            series = Series(source, symbol, BarSize(bar_size), price_type)
            found.append((series, Held(first, last, count)))
    return found


async def bar_times(conn: AsyncConnection, series: Series, lo: int, hi: int) -> list[int]:
    query = (
        select(bar_rows.c.ts)
        .where(_of(series), bar_rows.c.ts >= _at(lo), bar_rows.c.ts < _at(hi))
        .order_by(bar_rows.c.ts)
    )
    return [int(ts.timestamp()) for ts in (await conn.execute(query)).scalars()]


def _chunks_over(series: Series, lo: int, hi: int) -> Select[Any]:
    """Every chunk of a job of this series overlapping [lo, hi), with its job's status."""
    of = (series.source, series.symbol, series.bar_size.value, series.price_type)
    return _chunks_of(*of, _at(lo), _at(hi))


def _chunks_of(
    source: Any, symbol: Any, bar_size: Any, price_type: Any, lo: Any, hi: Any
) -> Select[Any]:
    """As _chunks_over; each argument a value or a bind parameter (lo, hi: datetimes)."""
    return (
        select(
            job_chunks.c.start,
            job_chunks.c.end,
            job_chunks.c.status,
            jobs.c.status.label("job_status"),
            jobs.c.started_at,
        )
        .join(jobs, jobs.c.job_id == job_chunks.c.job_id)
        .where(
            # The series a job filled: its instrument, else its symbol (ix_jobs_series, 0010).
            series_symbol_of_job() == symbol,
            jobs.c.source == source,
            jobs.c.bar_size == bar_size,
            jobs.c.price_type == price_type,
            job_chunks.c.start < hi,
            job_chunks.c.end > lo,
        )
    )


_KNOWN = ("source", "symbol", "bar_size", "price_type", "lo", "hi", "near_lo", "near_hi")


@cache
def anything_known() -> ColumnElement[bool]:
    """Whether any bar or any job's chunk could count toward a series over a range: bind it
    with `known_params`. False means `measure` would find every slot missing, never requested.

    An SQL expression rather than a query, so a caller asks it in the same round trip as its
    other questions; built once, since building a statement costs more than running this one.
    """
    p: dict[str, BindParameter[Any]] = {name: bindparam(f"known_{name}") for name in _KNOWN}
    of = (p["source"], p["symbol"], p["bar_size"], p["price_type"])
    # The bars `measure` reads, with their half-day margin for coarse bars.
    near = _bars_of(*of), bar_rows.c.ts >= p["near_lo"], bar_rows.c.ts < p["near_hi"]
    chunks = _chunks_of(*of, p["lo"], p["hi"])
    return or_(select(bar_rows.c.ts).where(*near).exists(), chunks.exists())


def known_params(series: Series, lo: int, hi: int) -> dict[str, Any]:
    """The parameters of `anything_known` for the series over [lo, hi) (epoch seconds)."""
    values = (series.source, series.symbol, series.bar_size.value, series.price_type)
    times = (_at(lo), _at(hi), _at(lo - HALF_DAY), _at(hi + HALF_DAY))
    return {f"known_{name}": value for name, value in zip(_KNOWN, values + times, strict=True)}


async def chunk_windows(
    conn: AsyncConnection, series: Series, lo: int, hi: int
) -> list[ChunkWindow]:
    """Every chunk of a job of this series overlapping [lo, hi), as what it says of its window."""
    query = _chunks_over(series, lo, hi)
    windows = []
    for row in (await conn.execute(query)).mappings():
        start, end = int(row["start"].timestamp()), int(row["end"].timestamp())
        if row["status"] in ("done", "no_data"):
            if row["started_at"] is not None:  # nothing after the fetch is claimed as answered
                end = min(end, int(row["started_at"].timestamp()))
            kind = GapKind.PARTIAL if row["status"] == "done" else GapKind.NO_DATA
            windows.append(ChunkWindow(start, end, kind))
        elif row["job_status"] in FINISHED:
            windows.append(ChunkWindow(start, end, GapKind.FAILED))
    return windows


async def measure(
    conn: AsyncConnection,
    series: Series,
    calendar: TradingCalendar,
    lo: int,
    hi: int,
    chunks: list[ChunkWindow] | None = None,
) -> Measured:
    """The series over [lo, hi) (epoch seconds, UTC) against `calendar`.

    `chunks`: the series' `chunk_windows` over [lo, hi), when the caller has read them already.
    """
    slots = await asyncio.to_thread(expected_slots, calendar, series.bar_size, lo, hi)
    # Coarse bars stamped at the exchange's midnight may sit up to half a day off their slot.
    times = await bar_times(conn, series, lo - HALF_DAY, hi + HALF_DAY)
    if chunks is None:
        chunks = await chunk_windows(conn, series, lo, hi)
    is_held = held_slots(slots, times)
    return Measured(slots, is_held, classify(slots, is_held, chunks))


async def coverage(
    conn: AsyncConnection,
    series: Series,
    *,
    calendar: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    with_days: bool = False,
) -> CoverageView:
    """First and last bar, count, and the gaps over [start, end) (default: first to last bar)."""
    chosen = calendar_for(series.source, calendar)
    summary = await held(conn, series)
    lo = start or summary.first
    hi = end or (None if summary.last is None else summary.last.replace(microsecond=0))
    view = CoverageView(
        source=series.source,
        symbol=series.symbol,
        bar_size=series.bar_size.value,
        price_type=series.price_type,
        calendar=chosen.name,
        first=summary.first,
        last=summary.last,
        count=summary.count,
        start=lo,
        end=end,
        expected=0,
        held=0,
        gaps=[],
    )
    if lo is None or hi is None:
        return view
    # Without an end, the range runs to the last bar, inclusive.
    hi_ts = int(hi.timestamp()) + (0 if end else 1)
    lo_ts = int(lo.timestamp())
    if start is None and not series.bar_size.is_intraday:
        lo_ts -= HALF_DAY  # the first bar's slot, when it is stamped at the exchange's midnight
    measured = await measure(conn, series, chosen, lo_ts, hi_ts)
    view.end = end or _at(hi_ts)
    view.expected = len(measured.slots)
    view.held = sum(measured.held)
    view.gaps = [
        GapView(start=_at(g.start), end=_at(g.end), bars=g.bars, kind=g.kind.value)
        for g in measured.gaps
    ]
    if with_days:
        view.days = _days(measured)
    return view


def _days(measured: Measured) -> list[DayView]:
    expected = Counter(measured.slots.days)
    held_by_day = Counter(d for d, h in zip(measured.slots.days, measured.held, strict=True) if h)
    return [DayView(day=d, expected=n, held=held_by_day[d]) for d, n in expected.items()]


def _at(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, UTC)
