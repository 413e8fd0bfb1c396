"""Trading calendars: the sessions a series is measured against.

A session is one trading day with its open and close (epoch seconds, UTC). The `sim` source has
its own calendar (every weekday, 09:30 to 16:00 New York, no holidays: the rule of
`backfill_sim.calendar`, restated here because apps are never imported by libraries). Every
other series is measured against an exchange's calendar from `exchange_calendars`, which knows
holidays and half days (XNYS closes at 13:00 New York on 2024-07-03 and 2024-11-29, and not at
all on 2024-07-04).

The calendar of a series is not in the projections (Yahoo and IB name the exchange in their own
ways), so it is chosen by source: `sim` for the sim, XNYS otherwise, and a caller may name
another (`calendar=XLON`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from typing import Any, Protocol
from zoneinfo import ZoneInfo

SIM = "sim"
DEFAULT_EXCHANGE = "XNYS"


class UnknownCalendarError(ValueError):
    """Raised when a calendar name is neither `sim` nor one exchange_calendars knows."""


@dataclass(frozen=True, slots=True)
class Session:
    day: date
    open: int  # epoch seconds, UTC
    close: int


class TradingCalendar(Protocol):
    name: str

    def sessions(self, first: date, last: date) -> list[Session]:
        """Every session from `first` to `last`, both inclusive, in order."""
        ...


class SimCalendar:
    """Every weekday, 09:30 to 16:00 America/New_York (the DST offset of the day)."""

    name = SIM

    def sessions(self, first: date, last: date) -> list[Session]:
        zone = ZoneInfo("America/New_York")
        days = (first + timedelta(days=n) for n in range((last - first).days + 1))
        return [
            Session(
                day,
                int(datetime.combine(day, time(9, 30), tzinfo=zone).timestamp()),
                int(datetime.combine(day, time(16, 0), tzinfo=zone).timestamp()),
            )
            for day in days
            if day.weekday() < 5
        ]


class ExchangeCalendar:
    """An exchange's sessions from exchange_calendars (holidays and early closes included)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._calendar = _exchange(name, None)

    def sessions(self, first: date, last: date) -> list[Session]:
        calendar = self._calendar
        if first < calendar.first_session.date():
            calendar = _exchange(self.name, first.year)
        first = max(first, calendar.first_session.date())
        last = min(last, calendar.last_session.date())
        if first > last:
            return []
        schedule = calendar.schedule.loc[first.isoformat() : last.isoformat()]
        opens = schedule["open"].astype("int64") // 1_000_000_000
        closes = schedule["close"].astype("int64") // 1_000_000_000
        return [
            Session(label.date(), int(o), int(c))
            for label, o, c in zip(schedule.index, opens, closes, strict=True)
        ]


@cache
def _exchange(name: str, from_year: int | None) -> Any:
    """exchange_calendars' calendar (by default from 20 years back), built once per process."""
    import exchange_calendars  # heavy (pandas): loaded when first needed, never at import

    try:
        with warnings.catch_warnings():
            # exchange_calendars 4.13 reads `Series.values` of zoned times, which pandas 3.1
            # deprecates; the values it reads are right (UTC nanoseconds).
            warnings.filterwarnings("ignore", message="Series.values returning an ndarray")
            if from_year is None:
                return exchange_calendars.get_calendar(name)
            return exchange_calendars.get_calendar(name, start=f"{from_year}-01-01")
    except exchange_calendars.errors.InvalidCalendarName as error:
        raise UnknownCalendarError(f"unknown calendar {name!r} (e.g. XNYS, XLON, sim)") from error


def calendar_for(source: str, name: str | None = None) -> TradingCalendar:
    """The calendar `name`, else the source's default: the sim's own, or XNYS."""
    chosen = name or (SIM if source == SIM else DEFAULT_EXCHANGE)
    if chosen == SIM:
        return SimCalendar()
    return ExchangeCalendar(chosen.upper())


def utc_day(ts: int) -> date:
    return datetime.fromtimestamp(ts, UTC).date()
