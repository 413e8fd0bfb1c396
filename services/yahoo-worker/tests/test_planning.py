"""Planning never sends a request Yahoo would refuse, and says what is possible instead."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest

from backfill_contracts import BarSize, Outcome
from backfill_worker import SourceError
from backfill_yahoo.planning import plan_chunks

NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


def test_one_minute_bars_come_in_chunks_of_a_week_at_most() -> None:
    chunks = plan_chunks(BarSize.M1, NOW - timedelta(days=29), NOW, NOW)
    assert [c.index for c in chunks] == [0, 1, 2, 3, 4]
    assert all(c.end - c.start <= timedelta(days=7) for c in chunks)
    assert chunks[0].start == NOW - timedelta(days=29)
    assert chunks[-1].end == NOW
    assert all(a.end == b.start for a, b in pairwise(chunks))


@pytest.mark.parametrize(
    ("bar_size", "days", "allowed"),
    [
        (BarSize.M1, 30, 29),
        (BarSize.M2, 60, 59),
        (BarSize.M5, 60, 59),
        (BarSize.M15, 60, 59),
        (BarSize.M30, 60, 59),
        (BarSize.H1, 730, 729),
    ],
)
def test_past_the_lookback_fails_at_planning_saying_what_is_possible(
    bar_size: BarSize, days: int, allowed: int
) -> None:
    with pytest.raises(SourceError) as refused:
        plan_chunks(bar_size, NOW - timedelta(days=days), NOW, NOW)
    assert refused.value.outcome is Outcome.INVALID_REQUEST
    earliest = (NOW - timedelta(days=allowed)).isoformat(timespec="minutes")
    assert f"only for the last {allowed} days: start at {earliest} or later" in str(refused.value)
    assert len(plan_chunks(bar_size, NOW - timedelta(days=allowed), NOW, NOW)) >= 1


@pytest.mark.parametrize("bar_size", [BarSize.D1, BarSize.W1, BarSize.MO1])
def test_daily_and_longer_take_one_request_for_any_history(bar_size: BarSize) -> None:
    start = datetime(1990, 1, 1, tzinfo=UTC)
    assert [(c.start, c.end) for c in plan_chunks(bar_size, start, NOW, NOW)] == [(start, NOW)]


@pytest.mark.parametrize("bar_size", [BarSize.S1, BarSize.M3, BarSize.M10, BarSize.H4])
def test_a_bar_size_yahoo_lacks_is_refused(bar_size: BarSize) -> None:
    with pytest.raises(SourceError) as refused:
        plan_chunks(bar_size, NOW - timedelta(days=1), NOW, NOW)
    assert refused.value.outcome is Outcome.INVALID_REQUEST
    assert str(refused.value) == (
        f"Yahoo has no {bar_size.value} bars; it serves 1m 2m 5m 15m 30m 1h 1d 1w 1mo"
    )


def test_the_future_is_clipped_and_a_future_range_plans_nothing() -> None:
    chunks = plan_chunks(BarSize.D1, NOW - timedelta(days=3), NOW + timedelta(days=30), NOW)
    assert [(c.start, c.end) for c in chunks] == [(NOW - timedelta(days=3), NOW)]
    assert plan_chunks(BarSize.D1, NOW + timedelta(days=1), NOW + timedelta(days=2), NOW) == []
