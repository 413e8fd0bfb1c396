"""Trading sessions, in New York time, without holidays.

- STK and IND: weekdays, 09:30-16:00 (useRTH=1) or 04:00-20:00 (useRTH=0).
- FUT and CASH: Sunday 18:00 to Friday 17:00 with a daily break 17:00-18:00; a session
  that opens at 18:00 belongs to the next day's trading date. useRTH changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

NEW_YORK = ZoneInfo("America/New_York")

_RTH = (time(9, 30), time(16, 0))
_EXTENDED = (time(4, 0), time(20, 0))
_OVERNIGHT = (time(18, 0), time(17, 0))  # opens the evening before the trading date
_AROUND_THE_CLOCK = ("FUT", "CASH")


@dataclass(frozen=True)
class Session:
    trading_day: date
    start: datetime  # UTC
    end: datetime  # UTC, exclusive


def _at(day: date, clock: time) -> datetime:
    return datetime.combine(day, clock, NEW_YORK).astimezone(UTC)


def session_on(sec_type: str, use_rth: bool, trading_day: date) -> Session | None:
    """The session whose trading date is `trading_day`, if it trades that day."""
    if trading_day.weekday() >= 5:
        return None
    if sec_type in _AROUND_THE_CLOCK:
        opens, closes = _OVERNIGHT
        return Session(
            trading_day, _at(trading_day - timedelta(days=1), opens), _at(trading_day, closes)
        )
    opens, closes = _RTH if use_rth else _EXTENDED
    return Session(trading_day, _at(trading_day, opens), _at(trading_day, closes))


def sessions_between(sec_type: str, use_rth: bool, start: datetime, end: datetime) -> list[Session]:
    """The sessions overlapping [start, end), in time order."""
    first = start.astimezone(NEW_YORK).date() - timedelta(days=1)
    last = end.astimezone(NEW_YORK).date() + timedelta(days=1)
    found = []
    day = first
    while day <= last:
        session = session_on(sec_type, use_rth, day)
        if session and session.end > start and session.start < end:
            found.append(session)
        day += timedelta(days=1)
    return found


def hours_text(sec_type: str, use_rth: bool, first_day: date, days: int, zone: str) -> str:
    """contractDetails tradingHours / liquidHours: `20250106:0930-20250106:1600;20250104:CLOSED`
    in the contract's time zone, for `days` trading dates from `first_day`."""
    tz = ZoneInfo(zone)
    parts = []
    for offset in range(days):
        day = first_day + timedelta(days=offset)
        session = session_on(sec_type, use_rth, day)
        if session is None:
            parts.append(f"{day:%Y%m%d}:CLOSED")
            continue
        opens = session.start.astimezone(tz)
        closes = session.end.astimezone(tz)
        parts.append(f"{opens:%Y%m%d:%H%M}-{closes:%Y%m%d:%H%M}")
    return ";".join(parts)
