"""Planning within IB's step-size table; requests IB reads one way only."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from backfill_contracts import BarSize
from backfill_contracts.limits import IBKR_MAX_SPAN
from backfill_ibkr.planning import IB_BAR_SIZE, duration_for, end_time, plan_chunks

START = datetime(2024, 3, 1, tzinfo=UTC)

# IB's table (SOURCES.md), as durations in seconds IB accepts for each bar size.
MAX_SECONDS = {
    "1 secs": 1800, "5 secs": 3600, "10 secs": 14400, "15 secs": 14400, "30 secs": 28800,
    "1 min": 86400, "2 mins": 2 * 86400, "3 mins": 7 * 86400, "5 mins": 7 * 86400,
    "10 mins": 7 * 86400, "15 mins": 7 * 86400, "20 mins": 7 * 86400,
}  # fmt: skip
UNIT_SECONDS = {"S": 1, "D": 86400, "W": 7 * 86400, "M": 31 * 86400, "Y": 366 * 86400}


def seconds_of(duration: str) -> int:
    amount, unit = duration.split()
    return int(amount) * UNIT_SECONDS[unit]


@pytest.mark.parametrize("bar_size", list(BarSize))
def test_every_chunk_is_a_legal_request_covering_it(bar_size: BarSize) -> None:
    end = START + IBKR_MAX_SPAN[bar_size] * 3 + timedelta(hours=5)
    chunks = plan_chunks(bar_size, START, end)
    assert chunks[0].start == START
    assert chunks[-1].end == end
    assert all(a.end == b.start for a, b in itertools.pairwise(chunks))
    for chunk in chunks:
        duration = duration_for(bar_size, chunk.start, chunk.end)
        assert seconds_of(duration) >= (chunk.end - chunk.start).total_seconds()
        limit = MAX_SECONDS.get(IB_BAR_SIZE[bar_size])
        if limit is not None:
            assert seconds_of(duration) <= limit, (bar_size, duration)


def test_one_second_bars_take_half_an_hour_a_request() -> None:
    chunks = plan_chunks(BarSize.S1, START, START + timedelta(hours=2))
    assert len(chunks) == 4
    assert duration_for(BarSize.S1, chunks[0].start, chunks[0].end) == "1800 S"


def test_minute_bars_of_a_day_are_asked_in_seconds() -> None:
    assert duration_for(BarSize.M1, START, START + timedelta(days=1)) == "86400 S"
    assert duration_for(BarSize.D1, START, START + timedelta(days=365)) == "1 Y"
    assert duration_for(BarSize.H1, START, START + timedelta(days=28)) == "1 M"


def test_end_times_carry_their_zone() -> None:
    assert end_time(datetime(2024, 3, 1, 21, 0, tzinfo=UTC)) == "20240301 21:00:00 UTC"


def test_bar_size_names_are_exactly_ibs() -> None:
    legal = [
        "1 secs", "5 secs", "10 secs", "15 secs", "30 secs", "1 min", "2 mins", "3 mins",
        "5 mins", "10 mins", "15 mins", "20 mins", "30 mins", "1 hour", "2 hours", "3 hours",
        "4 hours", "8 hours", "1 day", "1W", "1M",
    ]  # fmt: skip
    assert sorted(IB_BAR_SIZE.values()) == sorted(legal)
