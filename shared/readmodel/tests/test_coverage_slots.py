"""Expected bars from real calendars: XNYS holidays and half days, and the sim's weekdays."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime

import pytest

from backfill_contracts import BarSize
from backfill_readmodel.coverage import (
    GapKind,
    RangeTooLargeError,
    UnknownCalendarError,
    calendar_for,
)
from backfill_readmodel.coverage.gaps import ChunkWindow, classify, held_slots
from backfill_readmodel.coverage.slots import expected_slots


def _ts(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


def test_xnys_independence_day_week_has_a_half_day_and_a_holiday() -> None:
    slots = expected_slots(calendar_for("yahoo"), BarSize.M30, _ts("2024-07-01"), _ts("2024-07-09"))
    per_day = Counter(slots.days)
    assert per_day[date(2024, 7, 3)] == 7  # closes at 13:00 New York: 09:30 to 13:00
    assert date(2024, 7, 4) not in per_day  # Independence Day
    assert per_day[date(2024, 7, 5)] == 13
    assert len(slots) == 4 * 13 + 7
    half_day = [s for s, d in zip(slots.starts, slots.days, strict=True) if d == date(2024, 7, 3)]
    assert half_day[-1] == _ts("2024-07-03T16:30:00")  # the last bar opens 12:30 New York


def test_xnys_thanksgiving_and_the_day_after() -> None:
    calendar = calendar_for("ibkr", "XNYS")
    minutes = expected_slots(calendar, BarSize.M1, _ts("2024-11-28"), _ts("2024-11-30"))
    assert set(minutes.days) == {date(2024, 11, 29)}  # the 28th is Thanksgiving
    assert len(minutes) == 210  # 09:30 to 13:00
    assert minutes.ends[-1] == _ts("2024-11-29T18:00:00")
    days = expected_slots(calendar, BarSize.D1, _ts("2024-11-25"), _ts("2024-12-03"))
    assert [d.day for d in days.days] == [25, 26, 27, 29, 2]


def test_daily_bars_at_the_exchanges_midnight_fill_their_day() -> None:
    calendar = calendar_for("yahoo")
    slots = expected_slots(calendar, BarSize.D1, _ts("2024-07-01"), _ts("2024-07-09"))
    # Yahoo stamps daily bars at 00:00 New York: 04:00 UTC in summer. July 5 is missing.
    stamps = [_ts(f"2024-07-0{d}T04:00:00") for d in (1, 2, 3, 8)]
    held = held_slots(slots, stamps)
    gaps = classify(slots, held, [])
    assert [(g.start, g.bars, g.kind) for g in gaps] == [
        (_ts("2024-07-05"), 1, GapKind.NEVER_REQUESTED)
    ]


def test_sim_calendar_is_every_weekday_without_holidays() -> None:
    slots = expected_slots(calendar_for("sim"), BarSize.M1, _ts("2024-07-01"), _ts("2024-07-08"))
    assert len(slots) == 5 * 390  # July 4 included: the sim knows no holidays
    weeks = expected_slots(calendar_for("sim"), BarSize.W1, _ts("2024-07-01"), _ts("2024-07-29"))
    assert weeks.starts == [_ts(f"2024-07-{d:02d}") for d in (1, 8, 15, 22)]


def test_gap_reasons_split_a_run_and_collected_beats_failed() -> None:
    slots = expected_slots(calendar_for("sim"), BarSize.D1, _ts("2024-01-01"), _ts("2024-01-13"))
    held = held_slots(slots, [_ts("2024-01-01"), _ts("2024-01-02")])
    chunks = [
        ChunkWindow(_ts("2024-01-03"), _ts("2024-01-05"), GapKind.NO_DATA),
        ChunkWindow(_ts("2024-01-03"), _ts("2024-01-10"), GapKind.FAILED),
        ChunkWindow(_ts("2024-01-01"), _ts("2024-01-04"), GapKind.PARTIAL),
    ]
    gaps = classify(slots, held, chunks)
    assert [(g.start, g.end, g.bars, g.kind) for g in gaps] == [
        (_ts("2024-01-03"), _ts("2024-01-04"), 1, GapKind.PARTIAL),
        (_ts("2024-01-04"), _ts("2024-01-05"), 1, GapKind.NO_DATA),
        (_ts("2024-01-05"), _ts("2024-01-10"), 3, GapKind.FAILED),
        (_ts("2024-01-10"), _ts("2024-01-13"), 3, GapKind.NEVER_REQUESTED),
    ]


def test_an_unknown_calendar_is_refused() -> None:
    with pytest.raises(UnknownCalendarError, match="XNOPE"):
        calendar_for("yahoo", "XNOPE")


def test_a_range_too_large_is_refused_before_it_is_built() -> None:
    sim = calendar_for("sim")
    with pytest.raises(RangeTooLargeError, match="100 years"):
        expected_slots(sim, BarSize.D1, _ts("0001-01-01"), _ts("9999-01-01"))
    with pytest.raises(RangeTooLargeError, match="2000000 1s bars"):
        expected_slots(sim, BarSize.S1, _ts("2024-01-01"), _ts("2025-01-01"))
