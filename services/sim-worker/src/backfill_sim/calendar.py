"""The sim trading calendar: which bars exist, and when.

Every weekday (Mon-Fri, no holidays) is a trading day. Intraday bars cover the New York session,
09:30 to 16:00 America/New_York (14:30-21:00 UTC in winter, 13:30-20:00 UTC in summer). They start
at the open and step by the bar size; the last bar of a day may be shorter. Daily bars sit at the
date's 00:00 UTC, weekly bars at the Monday's, monthly bars at the 1st's. A bar belongs to a range
when start <= bar timestamp < end. Timestamps are epoch seconds, UTC.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

from backfill_contracts import BarSize

SESSION_OPEN = time(9, 30)
SESSION_CLOSE = time(16, 0)
SESSION_SECONDS = 390 * 60
DAY_SECONDS = 86_400
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


@cache
def _new_york() -> ZoneInfo:
    # Loaded on first use, not at import, so importing the module touches no files.
    return ZoneInfo("America/New_York")


def is_trading_day(day: date) -> bool:
    return day.weekday() < 5


def day_epoch(day: date) -> int:
    """The date's 00:00 UTC in epoch seconds."""
    return (day.toordinal() - _EPOCH_ORDINAL) * DAY_SECONDS


def day_start(day: date) -> datetime:
    """The date's 00:00 UTC as an aware datetime."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def session_bounds(day: date) -> tuple[int, int]:
    """The session's open and close in epoch seconds; zoneinfo applies the day's DST offset."""
    zone = _new_york()
    opens = datetime.combine(day, SESSION_OPEN, tzinfo=zone)
    closes = datetime.combine(day, SESSION_CLOSE, tzinfo=zone)
    return int(opens.timestamp()), int(closes.timestamp())


def _utc_dates(start: datetime, end: datetime) -> list[date]:
    """Every UTC date from start's to end's, inclusive: the candidates for bars in the range."""
    first = start.astimezone(UTC).date()
    last = end.astimezone(UTC).date()
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def trading_days(start: datetime, end: datetime) -> list[date]:
    """Trading days whose session [open, close) overlaps [start, end), in order.

    Overlap with the session rather than the whole UTC date, so a range that only covers a
    weekday's night plans no chunk that could never hold an intraday bar.
    """
    lo, hi = start.timestamp(), end.timestamp()
    days = []
    for day in _utc_dates(start, end):
        if not is_trading_day(day):
            continue
        opens, closes = session_bounds(day)
        if opens < hi and lo < closes:
            days.append(day)
    return days


def session_bar_timestamps(bar_size: BarSize, day: date) -> list[int]:
    """Every intraday bar of one trading day, from the open, stepping by the bar size."""
    duration = bar_size.duration
    if duration is None or not bar_size.is_intraday:
        raise ValueError(f"{bar_size} is not an intraday bar size")
    if not is_trading_day(day):
        return []
    opens, closes = session_bounds(day)
    return list(range(opens, closes, int(duration.total_seconds())))


def coarse_bar_day(bar_size: BarSize, day: date) -> date | None:
    """The day a daily, weekly or monthly bar is stamped with, if `day` carries one."""
    if bar_size is BarSize.D1:
        return day if is_trading_day(day) else None
    if bar_size is BarSize.W1:
        return day if day.weekday() == 0 else None
    if bar_size is BarSize.MO1:
        return day if day.day == 1 else None
    raise ValueError(f"{bar_size} is not a daily, weekly or monthly bar size")


def next_bar_day(bar_size: BarSize, day: date) -> date:
    """The stamp day of the coarse bar after the one stamped `day`."""
    if bar_size is BarSize.D1:
        return day + timedelta(days=3 if day.weekday() == 4 else 1)
    if bar_size is BarSize.W1:
        return day + timedelta(days=7)
    if bar_size is BarSize.MO1:
        return date(day.year + day.month // 12, day.month % 12 + 1, 1)
    raise ValueError(f"{bar_size} is not a daily, weekly or monthly bar size")


def previous_bar_day(bar_size: BarSize, day: date) -> date:
    """The stamp day of the coarse bar before the one stamped `day`."""
    if bar_size is BarSize.D1:
        return day - timedelta(days=3 if day.weekday() == 0 else 1)
    if bar_size is BarSize.W1:
        return day - timedelta(days=7)
    if bar_size is BarSize.MO1:
        return date(day.year - (day.month == 1), (day.month - 2) % 12 + 1, 1)
    raise ValueError(f"{bar_size} is not a daily, weekly or monthly bar size")


def coarse_bar_days(bar_size: BarSize, start: datetime, end: datetime) -> list[date]:
    """Stamp days of the daily, weekly or monthly bars with start <= timestamp < end."""
    lo, hi = start.timestamp(), end.timestamp()
    return [
        day
        for day in _utc_dates(start, end)
        if coarse_bar_day(bar_size, day) is not None and lo <= day_epoch(day) < hi
    ]


def bar_timestamps(bar_size: BarSize, start: datetime, end: datetime) -> list[int]:
    """Every bar timestamp (epoch seconds, UTC) with start <= ts < end, in order."""
    if not bar_size.is_intraday:
        return [day_epoch(day) for day in coarse_bar_days(bar_size, start, end)]
    lo, hi = start.timestamp(), end.timestamp()
    return [
        ts
        for day in trading_days(start, end)
        for ts in session_bar_timestamps(bar_size, day)
        if lo <= ts < hi
    ]
