"""The fake market behind the fake Yahoo: symbols, trading calendar, bars and corporate actions.

Pure functions and plain data, no I/O. The rules, which `FakeYahoo.expected_bars` and the chart
endpoint share so that tests can count exactly:

- a symbol trades every weekday (no holidays) from its `first_trade` date on;
- the regular session is `session_open`..`session_close` in the exchange zone (09:30-16:00);
- a daily bar is stamped at the session open of its day (as Yahoo stamps US daily bars), a
  weekly bar at 00:00 on Monday, a monthly bar at 00:00 on the 1st, a quarterly bar at 00:00 on
  the 1st of Jan/Apr/Jul/Oct, a 5d bar at the session open of every fifth trading day counted
  from `first_trade`;
- intraday bars start at the session open and step by the interval while they start before the
  close (60m: 09:30 .. 15:30, 7 bars; 1m: 390 bars a day);
- a request for [period1, period2) gets every bar whose timestamp t has period1 <= t < period2
  and t <= now (bars of the future do not exist);
- prices are a function of (symbol, interval, timestamp) only ("1h" and "60m" are one interval).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

DAY = 86_400

#: Intraday intervals and their length in seconds.
INTRADAY_SECONDS: dict[str, int] = {
    "1m": 60,
    "2m": 120,
    "5m": 300,
    "15m": 900,
    "30m": 1_800,
    "60m": 3_600,
    "90m": 5_400,
    "1h": 3_600,
    "4h": 14_400,
}
DAILY_INTERVALS: tuple[str, ...] = ("1d", "5d", "1wk", "1mo", "3mo")
#: Yahoo's list, in the order its 400 error message prints it.
VALID_INTERVALS: tuple[str, ...] = (
    "1m", "2m", "5m", "15m", "30m", "60m", "90m", "1h", "4h",
    "1d", "5d", "1wk", "1mo", "3mo",
)  # fmt: skip
VALID_RANGES: tuple[str, ...] = (
    "1d", "5d", "1mo", "3mo", "6mo", "1y", "2y", "5y", "10y", "ytd", "max",
)  # fmt: skip

#: How far back (days before now) Yahoo serves each intraday interval.
LOOKBACK_DAYS: dict[str, int] = {
    "1m": 30,
    "2m": 60,
    "5m": 60,
    "15m": 60,
    "30m": 60,
    "90m": 60,
    "60m": 730,
    "4h": 730,
}
#: Longest span of one request, in days.
MAX_SPAN_DAYS: dict[str, int] = {"1m": 8}
#: Longest span of one daily-or-longer request (Yahoo's "100 years worth").
MAX_DAILY_SPAN_SECONDS = 100 * 365 * DAY


def canonical_interval(interval: str) -> str:
    """The interval the fake computes with: "1h" is "60m"."""
    return "60m" if interval == "1h" else interval


@dataclass(frozen=True)
class Bar:
    timestamp: int
    open: float
    high: float
    low: float
    close: float
    adjclose: float
    volume: int


@dataclass(frozen=True)
class SymbolSpec:
    symbol: str
    exchange_tz: str = "America/New_York"
    first_trade: date = date(2000, 1, 3)
    currency: str = "USD"
    instrument_type: str = "EQUITY"
    exchange_name: str = "NMS"
    full_exchange_name: str = "NasdaqGS"
    long_name: str = ""
    session_open: time = time(9, 30)
    session_close: time = time(16, 0)
    dividends: dict[date, float] = field(default_factory=dict)
    #: split date -> (numerator, denominator); 4:1 is (4, 1).
    splits: dict[date, tuple[int, int]] = field(default_factory=dict)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.exchange_tz)

    @property
    def price_decimals(self) -> int:
        return 4 if self.instrument_type == "CURRENCY" else 2

    def at(self, day: date, clock: time) -> int:
        """Epoch seconds of a wall-clock time on a day in the exchange zone."""
        return int(datetime.combine(day, clock, tzinfo=self.zone).timestamp())

    def local_date(self, epoch: int) -> date:
        return datetime.fromtimestamp(epoch, self.zone).date()


def weekdays(first: date, last: date) -> Iterator[date]:
    """Every Monday-to-Friday date in [first, last]."""
    day = first
    while day <= last:
        if day.weekday() < 5:
            yield day
        day += timedelta(days=1)


def quarterly_dividends(
    first: date, last: date, amount: float, months: tuple[int, ...] = (2, 5, 8, 11), day: int = 10
) -> dict[date, float]:
    """One dividend a quarter: the first weekday on or after `day` of each of `months`."""
    out: dict[date, float] = {}
    for year in range(first.year, last.year + 1):
        for month in months:
            ex_date = date(year, month, day)
            while ex_date.weekday() >= 5:
                ex_date += timedelta(days=1)
            if first <= ex_date <= last:
                out[ex_date] = amount
    return out


def default_symbols() -> dict[str, SymbolSpec]:
    """The symbols every fresh (or reset) fake knows."""
    specs = [
        SymbolSpec(
            "AAPL",
            long_name="Apple Inc.",
            dividends=quarterly_dividends(date(2012, 8, 1), date(2099, 12, 31), 0.25),
            splits={date(2020, 8, 31): (4, 1)},
        ),
        SymbolSpec("MSFT", long_name="Microsoft Corporation"),
        SymbolSpec("GOOG", long_name="Alphabet Inc."),
        SymbolSpec("TSLA", long_name="Tesla, Inc.", first_trade=date(2010, 6, 29)),
        SymbolSpec(
            "SPY",
            instrument_type="ETF",
            exchange_name="PCX",
            full_exchange_name="NYSEArca",
            long_name="SPDR S&P 500 ETF Trust",
        ),
        SymbolSpec("QQQ", instrument_type="ETF", long_name="Invesco QQQ Trust, Series 1"),
        SymbolSpec(
            "BRK-B",
            exchange_name="NYQ",
            full_exchange_name="NYSE",
            long_name="Berkshire Hathaway Inc.",
        ),
        SymbolSpec(
            "^GSPC",
            instrument_type="INDEX",
            exchange_name="SNP",
            full_exchange_name="SNP",
            long_name="S&P 500",
        ),
        SymbolSpec(
            "EURUSD=X",
            exchange_tz="Europe/London",
            instrument_type="CURRENCY",
            exchange_name="CCY",
            full_exchange_name="CCY",
            long_name="EUR/USD",
        ),
    ]
    return {spec.symbol: spec for spec in specs}


def bar_timestamps(
    spec: SymbolSpec, interval: str, period1: int, period2: int, now: int
) -> list[int]:
    """The timestamps of the bars served for [period1, period2) (see the module rules)."""
    interval = canonical_interval(interval)
    upper = min(period2, now + 1)
    if upper <= period1:
        return []
    first_day = max(spec.first_trade, spec.local_date(max(period1, 0)) - timedelta(days=1))
    last_day = spec.local_date(upper - 1)
    if first_day > last_day:
        return []
    out: list[int] = []
    if interval in INTRADAY_SECONDS:
        step = INTRADAY_SECONDS[interval]
        for day in weekdays(first_day, last_day):
            start, close = spec.at(day, spec.session_open), spec.at(day, spec.session_close)
            out.extend(t for t in range(start, close, step) if period1 <= t < upper)
        return out
    if interval == "1d":
        candidates = [spec.at(day, spec.session_open) for day in weekdays(first_day, last_day)]
    elif interval == "5d":
        candidates = [
            spec.at(day, spec.session_open)
            for index, day in enumerate(weekdays(spec.first_trade, last_day))
            if index % 5 == 0 and day >= first_day
        ]
    elif interval == "1wk":
        monday = first_day - timedelta(days=first_day.weekday())
        candidates = []
        while monday <= last_day:
            candidates.append(spec.at(monday, time(0)))
            monday += timedelta(days=7)
    else:  # 1mo, 3mo
        months = 3 if interval == "3mo" else 1
        month0 = ((first_day.month - 1) // months) * months + 1
        cursor = date(first_day.year, month0, 1)
        candidates = []
        while cursor <= last_day:
            candidates.append(spec.at(cursor, time(0)))
            month_index = cursor.month - 1 + months
            cursor = date(cursor.year + month_index // 12, month_index % 12 + 1, 1)
    return [t for t in candidates if period1 <= t < upper]


def make_bar(spec: SymbolSpec, interval: str, timestamp: int) -> Bar:
    """The bar of (symbol, interval, timestamp): deterministic, Low <= Open, Close <= High."""
    key = f"{spec.symbol}|{canonical_interval(interval)}|{timestamp}".encode()
    digest = hashlib.blake2b(key, digest_size=16).digest()
    r = [int.from_bytes(digest[i : i + 2], "big") for i in range(0, 16, 2)]
    decimals = spec.price_decimals
    if spec.instrument_type == "CURRENCY":
        base = 0.8 + (r[0] % 8_000) / 10_000
    else:
        base = 20 + (r[0] % 48_000) / 100
    open_ = round(base, decimals)
    close = round(base * (1 + (r[1] % 401 - 200) / 10_000), decimals)
    high = round(max(open_, close) * (1 + (r[2] % 101) / 10_000), decimals)
    low = round(min(open_, close) * (1 - (r[3] % 101) / 10_000), decimals)
    volume = 0 if spec.instrument_type == "CURRENCY" else 1_000 + (r[4] * 65_536 + r[5]) % 5_000_000
    return Bar(timestamp, open_, high, low, close, adjusted_close(spec, timestamp, close), volume)


# Yahoo's close is split-adjusted already; its adjusted close also takes out every dividend
# paid since. The fake takes 0.5 % off per dividend paid after the bar (up to today).
DIVIDEND_ADJUSTMENT = 0.995


def adjusted_close(spec: SymbolSpec, timestamp: int, close: float) -> float:
    day, today = spec.local_date(timestamp), datetime.now(spec.zone).date()
    later = sum(1 for paid in spec.dividends if day < paid <= today)
    return round(close * DIVIDEND_ADJUSTMENT**later, 6)


def limit_error(interval: str, period1: int, period2: int, now: int) -> str | None:
    """Yahoo's 422 description when [period1, period2) breaks the interval's limits, else None."""
    canonical = canonical_interval(interval)
    prefix = f"{interval} data not available for startTime={period1} and endTime={period2}. "
    lookback = LOOKBACK_DAYS.get(canonical)
    if lookback is not None and period1 < now - lookback * DAY:
        return prefix + f"The requested range must be within the last {lookback} days."
    span = MAX_SPAN_DAYS.get(canonical)
    if span is not None and period2 - period1 > span * DAY:
        return (
            prefix + f"Only {span} days worth of {canonical} granularity data are allowed to be "
            "fetched per request."
        )
    if canonical in DAILY_INTERVALS and period2 - period1 > MAX_DAILY_SPAN_SECONDS:
        return (
            prefix + "Only 100 years worth of day granularity data are allowed to be fetched "
            "per request."
        )
    return None


def range_window(spec: SymbolSpec, range_: str, interval: str, now: int) -> tuple[int, int]:
    """[period1, period2) for a `range=` request, clipped to the interval's lookback."""
    today = spec.local_date(now)
    if range_ == "max":
        start = spec.at(spec.first_trade, time(0))
    elif range_ == "ytd":
        start = spec.at(date(today.year, 1, 1), time(0))
    elif range_.endswith("d"):
        days = list(weekdays(today - timedelta(days=7 * int(range_[:-1]) + 7), today))
        start = spec.at(days[-int(range_[:-1])], time(0))
    else:
        months = int(range_[:-2]) if range_.endswith("mo") else 12 * int(range_[:-1])
        month_index = today.year * 12 + today.month - 1 - months
        year, month = divmod(month_index, 12)
        day = min(today.day, 28)
        start = spec.at(date(year, month + 1, day), time(0))
    lookback = LOOKBACK_DAYS.get(canonical_interval(interval))
    if lookback is not None:
        start = max(start, now - lookback * DAY)
    return start, now
