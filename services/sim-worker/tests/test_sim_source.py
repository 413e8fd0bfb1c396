"""The sim source: calendar, chunking, deterministic prices and simulated faults."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, date, datetime
from datetime import time as clock
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from backfill_contracts import BarBatch, BarSize, ChunkSpec, CollectBars, Outcome
from backfill_sim import SimSource
from backfill_sim.calendar import bar_timestamps, trading_days
from backfill_sim.prices import sim_bars
from backfill_worker.source import FetchRequest, Plan, SourceError

NEW_YORK = ZoneInfo("America/New_York")
Q1_START = datetime(2024, 1, 1, tzinfo=UTC)
Q1_END = datetime(2024, 4, 1, tzinfo=UTC)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def job(
    bar_size: str = "1m",
    start: datetime = Q1_START,
    end: datetime = Q1_END,
    symbol: str = "AAPL",
    **options: Any,
) -> CollectBars:
    return CollectBars(
        job_id="job-1",
        source="sim",
        symbol=symbol,
        bar_size=BarSize(bar_size),
        start=start,
        end=end,
        options=options,
    )


def plan(collect: CollectBars) -> Plan:
    return asyncio.run(SimSource().plan(collect))


def fetch(collect: CollectBars, chunk: ChunkSpec, try_number: int = 1) -> BarBatch:
    return asyncio.run(SimSource().fetch(FetchRequest(collect, chunk, try_number)))


def fetch_all(collect: CollectBars) -> BarBatch:
    """Plan the job, fetch every chunk and join the chunks' columns in order."""

    async def run() -> list[BarBatch]:
        source = SimSource()
        planned = await source.plan(collect)
        return [await source.fetch(FetchRequest(collect, c, 1)) for c in planned.chunks]

    batches = asyncio.run(run())
    return BarBatch(
        ts=[t for b in batches for t in b.ts],
        open=[v for b in batches for v in b.open],
        high=[v for b in batches for v in b.high],
        low=[v for b in batches for v in b.low],
        close=[v for b in batches for v in b.close],
        volume=[v for b in batches for v in b.volume],
    )


def new_york(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, NEW_YORK)


def assert_sane(bars: BarBatch) -> None:
    assert len(bars) > 0
    for o, h, low, c, v in zip(
        bars.open, bars.high, bars.low, bars.close, bars.volume, strict=True
    ):
        assert 0 < low <= min(o, c)
        assert max(o, c) <= h
        assert v > 0
        assert v == int(v)


# --- calendar ----------------------------------------------------------------------------


def test_minute_bars_over_a_quarter() -> None:
    collect = job("1m")
    planned = plan(collect)
    assert planned.price_type == "trades"
    assert len(planned.chunks) == 65
    assert [c.index for c in planned.chunks] == list(range(65))
    assert planned.chunks[0] == ChunkSpec(index=0, start=utc(2024, 1, 1), end=utc(2024, 1, 2))
    assert planned.chunks[-1] == ChunkSpec(index=64, start=utc(2024, 3, 29), end=utc(2024, 3, 30))

    bars = fetch_all(collect)
    assert len(bars) == 25_350  # 65 weekdays x 390
    assert len(set(bars.ts)) == 25_350
    assert bars.ts == sorted(bars.ts)
    assert all(Q1_START.timestamp() <= ts < Q1_END.timestamp() for ts in bars.ts)
    for ts in bars.ts:
        local = new_york(ts)
        assert local.weekday() < 5
        assert clock(9, 30) <= local.time() < clock(16, 0)
    assert new_york(bars.ts[0]) == datetime(2024, 1, 1, 9, 30, tzinfo=NEW_YORK)
    assert new_york(bars.ts[-1]) == datetime(2024, 3, 29, 15, 59, tzinfo=NEW_YORK)


def test_daily_bars_over_a_quarter() -> None:
    collect = job("1d")
    planned = plan(collect)
    assert planned.chunks == [ChunkSpec(index=0, start=Q1_START, end=Q1_END)]
    bars = fetch_all(collect)
    assert len(bars) == 65
    assert bars.ts[0] == int(utc(2024, 1, 1).timestamp())
    assert bars.ts[-1] == int(utc(2024, 3, 29).timestamp())
    assert all(ts % 86_400 == 0 for ts in bars.ts)
    assert all(datetime.fromtimestamp(ts, UTC).weekday() < 5 for ts in bars.ts)


@pytest.mark.parametrize(
    ("day", "open_utc"),
    [
        (date(2024, 3, 8), clock(14, 30)),  # Friday before DST starts: EST
        (date(2024, 3, 11), clock(13, 30)),  # first Monday of EDT
        (date(2024, 11, 1), clock(13, 30)),  # Friday before DST ends: EDT
        (date(2024, 11, 4), clock(14, 30)),  # first Monday of EST again
    ],
)
def test_dst_days_keep_390_minutes(day: date, open_utc: clock) -> None:
    start = utc(day.year, day.month, day.day)
    bars = sim_bars("AAPL", BarSize.M1, start, utc(day.year, day.month, day.day + 1))
    assert len(bars) == 390
    first = datetime.fromtimestamp(bars.ts[0], UTC)
    assert first == datetime.combine(day, open_utc, tzinfo=UTC)
    assert bars.ts[-1] - bars.ts[0] == 389 * 60
    assert new_york(bars.ts[-1]).time() == clock(15, 59)


@pytest.mark.parametrize(
    ("bar_size", "per_day", "last"),
    [
        ("1s", 23_400, clock(15, 59, 59)),
        ("5m", 78, clock(15, 55)),
        ("30m", 13, clock(15, 30)),
        ("1h", 7, clock(15, 30)),
        ("3h", 3, clock(15, 30)),
        ("4h", 2, clock(13, 30)),
        ("8h", 1, clock(9, 30)),
    ],
)
def test_intraday_bars_per_day(bar_size: str, per_day: int, last: clock) -> None:
    # The week of 2024-01-08: five trading days, then a weekend.
    ts = bar_timestamps(BarSize(bar_size), utc(2024, 1, 8), utc(2024, 1, 15))
    assert len(ts) == 5 * per_day
    days = [ts[i * per_day : (i + 1) * per_day] for i in range(5)]
    for n, day_ts in enumerate(days):
        assert new_york(day_ts[0]) == datetime(2024, 1, 8 + n, 9, 30, tzinfo=NEW_YORK)
        assert new_york(day_ts[-1]).time() == last


def test_hourly_times_of_day() -> None:
    ts = bar_timestamps(BarSize.H1, utc(2024, 7, 1), utc(2024, 7, 2))
    assert [new_york(t).strftime("%H:%M") for t in ts] == [
        "09:30",
        "10:30",
        "11:30",
        "12:30",
        "13:30",
        "14:30",
        "15:30",
    ]
    assert datetime.fromtimestamp(ts[0], UTC).time() == clock(13, 30)  # EDT


def test_weekly_and_monthly_counts() -> None:
    weekly = bar_timestamps(BarSize.W1, Q1_START, Q1_END)
    assert len(weekly) == 13  # Mondays 2024-01-01 .. 2024-03-25
    assert weekly[0] == int(utc(2024, 1, 1).timestamp())
    assert weekly[-1] == int(utc(2024, 3, 25).timestamp())
    assert all(datetime.fromtimestamp(t, UTC).weekday() == 0 for t in weekly)

    assert bar_timestamps(BarSize.MO1, Q1_START, Q1_END) == [
        int(utc(2024, m, 1).timestamp()) for m in (1, 2, 3)
    ]
    # A mid-month start: the month it starts in has its bar on the 1st, before the range.
    monthly = bar_timestamps(BarSize.MO1, utc(2023, 6, 15), utc(2024, 6, 15))
    assert len(monthly) == 12
    assert monthly[0] == int(utc(2023, 7, 1).timestamp())
    assert monthly[-1] == int(utc(2024, 6, 1).timestamp())

    assert len(fetch_all(job("1w"))) == 13
    assert len(fetch_all(job("1mo"))) == 3


def test_trading_days() -> None:
    days = trading_days(utc(2024, 1, 5, 20), utc(2024, 1, 9, 14))
    assert days == [date(2024, 1, 5), date(2024, 1, 8)]  # Jan 9 opens at 14:30 UTC
    assert trading_days(utc(2024, 1, 6), utc(2024, 1, 8)) == []


# --- planning ----------------------------------------------------------------------------


def test_coarse_chunks_are_calendar_blocks() -> None:
    daily = plan(job("1d", utc(2023, 6, 1), utc(2025, 2, 1))).chunks
    assert [(c.index, c.start, c.end) for c in daily] == [
        (0, utc(2023, 6, 1), utc(2024, 1, 1)),
        (1, utc(2024, 1, 1), utc(2025, 1, 1)),
        (2, utc(2025, 1, 1), utc(2025, 2, 1)),
    ]
    weekly = plan(job("1w", utc(2015, 3, 1), utc(2035, 1, 1))).chunks
    assert [(c.start, c.end) for c in weekly] == [
        (utc(2015, 3, 1), utc(2020, 1, 1)),
        (utc(2020, 1, 1), utc(2030, 1, 1)),
        (utc(2030, 1, 1), utc(2035, 1, 1)),
    ]
    monthly = plan(job("1mo", utc(2015, 3, 1), utc(2035, 1, 1)))
    assert len(monthly.chunks) == 3
    bars = fetch_all(job("1mo", utc(2015, 3, 1), utc(2035, 1, 1)))
    assert len(bars) == 238  # March 2015 .. December 2034
    assert len(set(bars.ts)) == 238


@pytest.mark.parametrize("bar_size", ["1m", "1h", "1d", "1w"])
def test_weekend_range_plans_nothing(bar_size: str) -> None:
    # Saturday 2024-01-06 00:00 to Monday 2024-01-08 00:00.
    assert plan(job(bar_size, utc(2024, 1, 6), utc(2024, 1, 8))).chunks == []


def test_weekday_night_plans_nothing_intraday() -> None:
    # Tuesday 22:00 UTC to Wednesday 05:00 UTC: both sessions are outside the range.
    assert plan(job("1m", utc(2024, 1, 2, 22), utc(2024, 1, 3, 5))).chunks == []


def test_mid_day_start_clips_bars() -> None:
    # 15:00 UTC is 10:00 in New York: the first half hour of the session is left out.
    collect = job("1m", utc(2024, 1, 2, 15), utc(2024, 1, 3))
    planned = plan(collect)
    assert planned.chunks == [ChunkSpec(index=0, start=utc(2024, 1, 2, 15), end=utc(2024, 1, 3))]
    clipped = fetch(collect, planned.chunks[0])
    assert len(clipped) == 360
    assert clipped.ts[0] == int(utc(2024, 1, 2, 15).timestamp())

    whole = sim_bars("AAPL", BarSize.M1, utc(2024, 1, 2), utc(2024, 1, 3))
    assert clipped.model_dump(exclude_none=True) == {
        name: column[30:] for name, column in whole.model_dump(exclude_none=True).items()
    }


def test_mid_range_end_clips_bars() -> None:
    bars = fetch_all(job("1h", utc(2024, 1, 2), utc(2024, 1, 3, 16, 30)))
    # 16:30 UTC is 11:30 in New York and the end is exclusive: Jan 3 keeps 09:30 and 10:30.
    assert len(bars) == 7 + 2
    assert new_york(bars.ts[-1]) == datetime(2024, 1, 3, 10, 30, tzinfo=NEW_YORK)


# --- prices ------------------------------------------------------------------------------


def test_same_request_same_bars() -> None:
    collect = job("5m", utc(2024, 2, 1), utc(2024, 2, 10))
    assert fetch_all(collect) == fetch_all(collect)


def test_a_day_alone_equals_the_day_inside_a_long_job() -> None:
    quarter = fetch_all(job("1m"))
    alone = fetch_all(job("1m", utc(2024, 2, 14), utc(2024, 2, 15)))
    lo = quarter.ts.index(alone.ts[0])
    assert len(alone) == 390
    for name, column in alone.model_dump(exclude_none=True).items():
        assert getattr(quarter, name)[lo : lo + 390] == column


def test_coarse_bars_do_not_depend_on_chunking() -> None:
    long_run = fetch_all(job("1d", utc(2022, 1, 1), utc(2025, 1, 1)))
    short = fetch_all(job("1d", utc(2023, 12, 20), utc(2024, 1, 10)))
    lo = long_run.ts.index(short.ts[0])
    for name, column in short.model_dump(exclude_none=True).items():
        assert getattr(long_run, name)[lo : lo + len(short)] == column
    # Each bar opens at the previous close, across the year boundary between chunks too.
    assert long_run.open[1:] == long_run.close[:-1]


def test_intraday_bars_open_at_the_previous_close() -> None:
    bars = sim_bars("MSFT", BarSize.M1, utc(2024, 1, 2), utc(2024, 1, 3))
    assert bars.open[1:] == bars.close[:-1]


def test_symbols_differ() -> None:
    aapl = fetch_all(job("1m", utc(2024, 2, 14), utc(2024, 2, 15), symbol="AAPL"))
    msft = fetch_all(job("1m", utc(2024, 2, 14), utc(2024, 2, 15), symbol="MSFT"))
    assert aapl.ts == msft.ts
    assert aapl.close != msft.close
    assert aapl.volume != msft.volume


@pytest.mark.parametrize("bar_size", ["1s", "1m", "15m", "1h", "8h", "1d", "1w", "1mo"])
def test_ohlc_sanity(bar_size: str) -> None:
    end = utc(2024, 1, 4) if bar_size == "1s" else utc(2024, 12, 31)
    bars = sim_bars("SPY", BarSize(bar_size), utc(2024, 1, 1), end)
    assert_sane(bars)
    assert all(10 < price < 1100 for price in bars.close)
    assert all(round(price, 4) == price for price in bars.high + bars.low)


def test_a_day_is_fast() -> None:
    start, end = utc(2024, 1, 2), utc(2024, 1, 3)
    runs = 20
    began = time.perf_counter()
    for _ in range(runs):
        sim_bars("AAPL", BarSize.M1, start, end)
    per_day = (time.perf_counter() - began) / runs
    assert per_day < 0.025  # about 0.2 ms here; loose so a slow CI box does not flake


# --- faults and options ------------------------------------------------------------------


def test_invalid_symbol_fails_at_plan() -> None:
    with pytest.raises(SourceError) as raised:
        plan(job(symbol="INVALID"))
    assert raised.value.outcome is Outcome.INVALID_SYMBOL
    assert "INVALID" in raised.value.message
    assert not raised.value.outcome.is_transient


def test_fail_every_fails_once_then_succeeds() -> None:
    collect = job("1m", utc(2024, 1, 1), utc(2024, 1, 10), fail_every=3)
    chunks = plan(collect).chunks
    assert len(chunks) == 7  # Jan 1-5 and 8-9
    errors: dict[int, SourceError] = {}
    for chunk in chunks:
        try:
            assert len(fetch(collect, chunk, try_number=1)) == 390
        except SourceError as error:
            errors[chunk.index] = error
    assert sorted(errors) == [2, 5]
    for failure in errors.values():
        assert failure.outcome is Outcome.UPSTREAM_ERROR
        assert failure.outcome.is_transient
        assert "simulated transient failure" in failure.message
    retried = fetch(collect, chunks[2], try_number=2)
    alone = fetch(job("1m", utc(2024, 1, 1), utc(2024, 1, 10)), chunks[2])
    assert retried == alone
    assert len(fetch(collect, chunks[5], try_number=3)) == 390


def test_latency_delays_each_fetch() -> None:
    collect = job("1d", utc(2024, 1, 1), utc(2024, 1, 8), latency_ms=60)
    chunk = plan(collect).chunks[0]
    began = time.perf_counter()
    bars = fetch(collect, chunk)
    assert time.perf_counter() - began >= 0.06
    assert len(bars) == 5


def test_source_name() -> None:
    assert SimSource().name == "sim"
