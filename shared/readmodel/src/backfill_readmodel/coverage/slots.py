"""The bars a series should hold over a range: one slot per expected bar, from a calendar.

Intraday slots step from each session's open by the bar size; the last one of a session may be
shorter (a half day ends at its early close). A bar fills the slot it falls in, so sources that
stamp hourly bars at 10:00 rather than 10:30 still count.

Daily, weekly and monthly slots are stamped at 00:00 UTC of the session's date, of the week's
Monday and of the month's 1st (as the sim stamps them). Sources stamp them at midnight of the
exchange's zone instead (Yahoo: 05:00 UTC for New York), so such a bar matches the slot of the
UTC date twelve hours after its stamp: right for every zone from UTC-12 to UTC+12.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from backfill_contracts import BarSize
from backfill_readmodel.coverage.calendars import Session, TradingCalendar

DAY = 86_400
HALF_DAY = DAY // 2
# Bounds on one measurement: past them a range is refused, not computed (a year of 1s bars).
MAX_SLOTS = 2_000_000
MAX_YEARS = 100


class RangeTooLargeError(ValueError):
    """Raised when a range spans more than MAX_YEARS or holds more than MAX_SLOTS bars."""


@dataclass(slots=True)
class Slots:
    """Expected bars in order: what each spans, which bar times fill it, and its session."""

    starts: list[int] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)
    # A bar with match_lo <= ts < match_hi fills the slot; the windows never overlap.
    match_lo: list[int] = field(default_factory=list)
    match_hi: list[int] = field(default_factory=list)
    days: list[date] = field(default_factory=list)

    def add(self, start: int, end: int, day: date, shift: int = 0) -> None:
        self.starts.append(start)
        self.ends.append(end)
        self.match_lo.append(start - shift)
        self.match_hi.append(end - shift)
        self.days.append(day)

    def __len__(self) -> int:
        return len(self.starts)


def expected_slots(calendar: TradingCalendar, bar_size: BarSize, lo: int, hi: int) -> Slots:
    """Slots with lo <= start < hi (epoch seconds, UTC); raises RangeTooLargeError."""
    if hi - lo > MAX_YEARS * 366 * DAY:
        raise RangeTooLargeError(f"a range spans at most {MAX_YEARS} years")
    first = _utc_date(lo) - timedelta(days=7)
    last = _utc_date(hi) + timedelta(days=1)
    sessions = calendar.sessions(first, last)
    slots = Slots()
    if bar_size.is_intraday:
        _intraday(slots, sessions, bar_size, lo, hi)
    else:
        _coarse(slots, sessions, bar_size, lo, hi)
    return slots


def _intraday(slots: Slots, sessions: list[Session], bar_size: BarSize, lo: int, hi: int) -> None:
    duration = bar_size.duration
    assert duration is not None  # every intraday size has a fixed length
    step = int(duration.total_seconds())
    for session in sessions:
        if session.close <= lo or session.open >= hi:
            continue
        for start in range(session.open, session.close, step):
            if lo <= start < hi:
                slots.add(start, min(start + step, session.close), session.day)
        if len(slots) > MAX_SLOTS:
            raise RangeTooLargeError(
                f"more than {MAX_SLOTS} {bar_size.value} bars expected in the range: "
                "ask for a shorter one"
            )


def _coarse(slots: Slots, sessions: list[Session], bar_size: BarSize, lo: int, hi: int) -> None:
    seen: set[date] = set()
    for session in sessions:
        stamp = _stamp_day(bar_size, session.day)
        if stamp in seen:
            continue
        seen.add(stamp)
        start = _epoch(stamp)
        if lo <= start < hi:
            end = _epoch(_next_stamp_day(bar_size, stamp))
            slots.add(start, end, session.day, shift=HALF_DAY)


def _stamp_day(bar_size: BarSize, day: date) -> date:
    if bar_size is BarSize.W1:
        return day - timedelta(days=day.weekday())
    if bar_size is BarSize.MO1:
        return day.replace(day=1)
    return day


def _next_stamp_day(bar_size: BarSize, day: date) -> date:
    if bar_size is BarSize.W1:
        return day + timedelta(days=7)
    if bar_size is BarSize.MO1:
        return date(day.year + day.month // 12, day.month % 12 + 1, 1)
    return day + timedelta(days=1)


def _epoch(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


def _utc_date(ts: int) -> date:
    return datetime.fromtimestamp(ts, UTC).date()
