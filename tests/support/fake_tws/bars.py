"""Historical bars: IB's bar sizes, durations and end times, and deterministic OHLCV.

A request's window is [end - duration, end): a bar is served when its start lies in it, it is
inside a trading session, not before the contract's head timestamp, not after a future's
expiry and not in the future. Intraday bars are aligned on multiples of their size from New
York midnight and clipped to the session (a 1-hour RTH day starts with a 09:30 bar). Daily
bars cover one session; weekly and monthly bars aggregate the sessions of the window, labelled
with their first trading date.

Prices come from a smooth function of time (a few sines whose phases are seeded by the conId)
plus per-bar noise seeded by (conId, bar start, bar size): the same request always gets the
same bars, and adjacent bars join up like a random walk.
"""

from __future__ import annotations

import math
import re
from calendar import monthrange
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tests.support.fake_tws.market import FakeContract
from tests.support.fake_tws.sessions import NEW_YORK, Session, sessions_between

Calendar = Literal["day", "week", "month"]

_DAY = 86_400


@dataclass(frozen=True)
class BarSize:
    label: str
    #: Length of an intraday bar; None for daily and longer bars.
    seconds: int | None
    calendar: Calendar | None = None
    #: The longest duration IB accepts for it, in nominal seconds (None: any).
    max_duration_s: int | None = None

    @property
    def nominal_seconds(self) -> int:
        """Its length for the pacing rules' bar-size filter (a day counts as 86400)."""
        if self.seconds is not None:
            return self.seconds
        return {"day": _DAY, "week": 7 * _DAY, "month": 30 * _DAY}[self.calendar or "day"]


def _intraday(label: str, seconds: int, max_duration_s: int) -> BarSize:
    return BarSize(label, seconds, None, max_duration_s)


_W = 7 * _DAY
_M = 30 * _DAY

#: Exactly IB's legal bar sizes, with the inverted step-size table (SOURCES.md).
BAR_SIZES: dict[str, BarSize] = {
    size.label: size
    for size in (
        _intraday("1 secs", 1, 1800),
        _intraday("5 secs", 5, 3600),
        _intraday("10 secs", 10, 14400),
        _intraday("15 secs", 15, 14400),
        _intraday("30 secs", 30, 28800),
        _intraday("1 min", 60, _DAY),
        _intraday("2 mins", 120, 2 * _DAY),
        _intraday("3 mins", 180, _W),
        _intraday("5 mins", 300, _W),
        _intraday("10 mins", 600, _W),
        _intraday("15 mins", 900, _W),
        _intraday("20 mins", 1200, _W),
        _intraday("30 mins", 1800, _M),
        _intraday("1 hour", 3600, _M),
        _intraday("2 hours", 7200, _M),
        _intraday("3 hours", 10800, _M),
        _intraday("4 hours", 14400, _M),
        _intraday("8 hours", 28800, _M),
        BarSize("1 day", None, "day"),
        BarSize("1W", None, "week"),
        BarSize("1M", None, "month"),
    )
}

#: whatToShow values the fake serves; IB's other legal ones are refused with 321.
SERVED_WHAT_TO_SHOW = ("TRADES", "MIDPOINT", "BID", "ASK", "BID_ASK", "ADJUSTED_LAST")
UNSERVED_WHAT_TO_SHOW = ("HISTORICAL_VOLATILITY", "OPTION_IMPLIED_VOLATILITY")

_DURATION = re.compile(r"^(\d+) ([SDWMY])$")
_NOMINAL = {"S": 1, "D": _DAY, "W": _W, "M": _M, "Y": 365 * _DAY}


@dataclass(frozen=True)
class Duration:
    count: int
    unit: str  # S D W M Y

    @property
    def nominal_seconds(self) -> int:
        return self.count * _NOMINAL[self.unit]

    def before(self, end: datetime) -> datetime:
        """The window's start: months and years are calendar ones."""
        if self.unit in ("S", "D", "W"):
            return end - timedelta(seconds=self.nominal_seconds)
        months = self.count * (12 if self.unit == "Y" else 1)
        year, month = divmod(end.year * 12 + end.month - 1 - months, 12)
        day = min(end.day, monthrange(year, month + 1)[1])
        return end.replace(year=year, month=month + 1, day=day)


def parse_duration(text: str) -> Duration | None:
    match = _DURATION.match(text.strip())
    if not match or int(match.group(1)) <= 0:
        return None
    return Duration(int(match.group(1)), match.group(2))


def too_long(bar_size: BarSize, duration: Duration) -> bool:
    return bar_size.max_duration_s is not None and duration.nominal_seconds > (
        bar_size.max_duration_s
    )


@dataclass(frozen=True)
class EndTime:
    when: datetime  # UTC
    #: Given without a zone: TWS takes its own (the fake's is UTC) and warns with 2174.
    naive: bool


def parse_end(text: str, now: datetime) -> EndTime | None:
    """IB's endDateTime: "" (now), "yyyymmdd-HH:MM:SS" (UTC), "yyyymmdd HH:MM:SS <zone>",
    or "yyyymmdd HH:MM:SS" (no zone); None when malformed (IB's 10314)."""
    text = text.strip()
    if not text:
        return EndTime(now, naive=False)
    try:
        if re.fullmatch(r"\d{8}-\d\d:\d\d:\d\d", text):
            return EndTime(_strptime(text, "%Y%m%d-%H:%M:%S", UTC), naive=False)
        parts = text.split(" ")
        if len(parts) == 2:
            return EndTime(_strptime(text, "%Y%m%d %H:%M:%S", UTC), naive=True)
        if len(parts) == 3:
            zone = ZoneInfo(parts[2])
            return EndTime(_strptime(" ".join(parts[:2]), "%Y%m%d %H:%M:%S", zone), False)
    except (ValueError, ZoneInfoNotFoundError):
        return None
    return None


def _strptime(text: str, fmt: str, zone: tzinfo) -> datetime:
    local = datetime.strptime(text, fmt)  # noqa: DTZ007 - the zone is attached right here
    return local.replace(tzinfo=zone).astimezone(UTC)


@dataclass(frozen=True)
class Bar:
    start: datetime  # UTC
    #: Set for daily and longer bars: their label.
    day: date | None
    open: float
    high: float
    low: float
    close: float
    volume: int
    wap: float
    count: int


# ---- the price model ---------------------------------------------------------------------

_MASK = (1 << 64) - 1
#: (period in seconds, relative amplitude): a year, a month, a day, an hour, five minutes.
_WAVES = ((365 * _DAY, 0.18), (30 * _DAY, 0.05), (_DAY, 0.008), (3600, 0.002), (300, 0.0007))


def _mix(value: int) -> int:
    """splitmix64: a cheap, well-spread hash of an int."""
    value = (value + 0x9E3779B97F4A7C15) & _MASK
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK
    return value ^ (value >> 31)


def _uniform(*keys: int) -> float:
    """A deterministic number in [0, 1) for the keys."""
    value = 0
    for key in keys:
        value = _mix(value ^ (key & _MASK))
    return value / 2.0**64


@lru_cache(maxsize=1024)
def _phases(con_id: int) -> tuple[tuple[float, float, float], ...]:
    """Per contract: (angular frequency, phase, amplitude) of each wave."""
    return tuple(
        (2 * math.pi / period, 2 * math.pi * _uniform(con_id, index), amplitude)
        for index, (period, amplitude) in enumerate(_WAVES)
    )


def _price(contract: FakeContract, epoch: float) -> float:
    waves = _phases(contract.con_id)
    return contract.base_price * math.exp(
        sum(amplitude * math.sin(omega * epoch + phase) for omega, phase, amplitude in waves)
    )


_SAMPLES = 4
_SPREAD = 0.0002  # relative bid/ask spread


def _ohlc(contract: FakeContract, t0: float, t1: float, size_s: int) -> tuple[float, ...]:
    """Open, high, low, close of TRADES over [t0, t1)."""
    open_ = _price(contract, t0)
    close = _price(contract, t1 - min(1.0, (t1 - t0) / 2))
    # A short bar barely moves between the waves' extremes: one inner sample is enough.
    samples = 1 if size_s <= 60 else _SAMPLES
    inside = [_price(contract, t0 + (t1 - t0) * k / (samples + 1)) for k in range(1, samples + 1)]
    wiggle = 0.0004 * math.sqrt(max(size_s, 1) / 60)
    high = max(open_, close, *inside) * (1 + wiggle * _uniform(contract.con_id, int(t0), 1))
    low = min(open_, close, *inside) * (1 - wiggle * _uniform(contract.con_id, int(t0), 2))
    return open_, high, low, close


def _shade(what_to_show: str, o: float, h: float, lo: float, c: float) -> tuple[float, ...]:
    """TRADES prices turned into the requested kind (a quote is half a spread off)."""
    half = _SPREAD / 2
    if what_to_show == "BID":
        return o * (1 - half), h * (1 - half), lo * (1 - half), c * (1 - half)
    if what_to_show == "ASK":
        return o * (1 + half), h * (1 + half), lo * (1 + half), c * (1 + half)
    if what_to_show == "BID_ASK":
        # IB's BID_ASK bar: average bid, max ask, min bid, average ask.
        return o * (1 - half), h * (1 + half), lo * (1 - half), c * (1 + half)
    return o, h, lo, c


@lru_cache(maxsize=64)
def _decimals(tick: float) -> int:
    return max(0, -math.floor(math.log10(tick) + 1e-9)) if tick < 1 else 0


def _round(value: float, tick: float) -> float:
    return round(round(value / tick) * tick, _decimals(tick) + 1)


def make_bar(
    contract: FakeContract,
    what_to_show: str,
    start: datetime,
    end: datetime,
    size_s: int,
    day: date | None = None,
) -> Bar:
    t0, t1 = start.timestamp(), end.timestamp()
    o, h, lo, c = _shade(what_to_show, *_ohlc(contract, t0, t1, size_s))
    tick = contract.min_tick
    o, h, lo, c = (_round(x, tick) for x in (o, h, lo, c))
    h, lo = max(h, o, c), min(lo, o, c)
    per_second = 5 + 20 * _uniform(contract.con_id, int(t0), 3)
    volume = max(1, int(per_second * (t1 - t0)))
    return Bar(
        start=start,
        day=day,
        open=o,
        high=h,
        low=lo,
        close=c,
        volume=volume,
        wap=_round((h + lo + c) / 3, tick / 10),
        count=max(1, volume // 7),
    )


# ---- which bars a window holds -----------------------------------------------------------


def _tradable(contract: FakeContract, now: datetime) -> tuple[datetime, datetime]:
    """[first, last) instants with data: head timestamp to expiry (futures) or now."""
    last = now
    if contract.last_trade_date:
        text = contract.last_trade_date
        expiry = date(int(text[:4]), int(text[4:6]), int(text[6:8]))
        last = min(last, datetime.combine(expiry + timedelta(days=1), datetime.min.time(), UTC))
    return contract.head_timestamp, last


def _intraday_bars(
    contract: FakeContract, what: str, session: Session, size_s: int, lo: datetime, hi: datetime
) -> Iterator[Bar]:
    origin = datetime.combine(session.start.astimezone(NEW_YORK).date(), datetime.min.time())
    origin_s = origin.replace(tzinfo=NEW_YORK).timestamp()
    session_start, session_end = session.start.timestamp(), session.end.timestamp()
    low = lo.timestamp()
    first = max(session_start, low)
    stop = min(session_end, hi.timestamp())
    slot = origin_s + math.floor((first - origin_s) / size_s) * size_s
    while slot < stop:
        b0 = max(slot, session_start)
        if low <= b0 < stop:
            b1 = min(slot + size_s, session_end)
            start = datetime.fromtimestamp(b0, UTC)
            yield make_bar(contract, what, start, datetime.fromtimestamp(b1, UTC), size_s)
        slot += size_s


def _group_key(calendar: Calendar, day: date) -> tuple[int, int]:
    if calendar == "week":
        iso = day.isocalendar()
        return iso.year, iso.week
    if calendar == "month":
        return day.year, day.month
    return day.toordinal(), 0


def _calendar_bars(
    contract: FakeContract, what: str, sessions: list[Session], calendar: Calendar
) -> Iterator[Bar]:
    groups: dict[tuple[int, int], list[Session]] = {}
    for session in sessions:
        groups.setdefault(_group_key(calendar, session.trading_day), []).append(session)
    for group in groups.values():
        first, last = group[0], group[-1]
        size_s = int((last.end - first.start).total_seconds())
        yield make_bar(contract, what, first.start, last.end, size_s, first.trading_day)


def iter_bars(
    contract: FakeContract,
    bar_size: BarSize,
    what_to_show: str,
    use_rth: bool,
    window: tuple[datetime, datetime],
    now: datetime,
) -> Iterator[Bar]:
    """The bars whose start lies in the window [start, end), in time order, one at a time
    (the gateway yields to its loop between batches, see server.py)."""
    first, last = _tradable(contract, now)
    lo, hi = max(window[0], first), min(window[1], last)
    if lo >= hi:
        return
    sessions = sessions_between(contract.sec_type, use_rth, lo, hi)
    if bar_size.seconds is None:
        inside = [s for s in sessions if lo <= s.start < hi]
        yield from _calendar_bars(contract, what_to_show, inside, bar_size.calendar or "day")
        return
    for session in sessions:
        yield from _intraday_bars(contract, what_to_show, session, bar_size.seconds, lo, hi)


def bars_for(
    contract: FakeContract,
    bar_size: BarSize,
    what_to_show: str,
    use_rth: bool,
    window: tuple[datetime, datetime],
    now: datetime,
) -> list[Bar]:
    return list(iter_bars(contract, bar_size, what_to_show, use_rth, window, now))


# ---- wire formats ------------------------------------------------------------------------


def format_bar_time(bar: Bar, format_date: int, zone: str) -> str:
    """formatDate 1: "yyyymmdd HH:MM:SS <zone>" in the contract's zone (what current TWS
    sends; both libraries parse it to an aware datetime); 2: epoch seconds. Daily and longer
    bars are always "yyyymmdd"."""
    if bar.day is not None:
        return f"{bar.day:%Y%m%d}"
    if format_date == 2:
        return str(int(bar.start.timestamp()))
    return f"{bar.start.astimezone(ZoneInfo(zone)):%Y%m%d %H:%M:%S} {zone}"


def format_window_time(when: datetime, zone: str) -> str:
    """The start/end strings of a historicalData message (neither library reads them)."""
    return f"{when.astimezone(ZoneInfo(zone)):%Y%m%d %H:%M:%S} {zone}"


def format_head_timestamp(when: datetime, format_date: int) -> str:
    """formatDate 2: epoch seconds; 1: "yyyymmdd-HH:MM:SS", IB's UTC notation (both libraries
    parse it to a naive datetime, which is UTC)."""
    if format_date == 2:
        return str(int(when.timestamp()))
    return f"{when.astimezone(UTC):%Y%m%d-%H:%M:%S}"


def format_price(value: float) -> str:
    text = f"{value:.8f}".rstrip("0").rstrip(".")
    return text or "0"
