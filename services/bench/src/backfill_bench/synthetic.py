"""Bar rows made here for COPY: the floor's batches and the read workload's big table."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

BAR_COLUMNS = (
    "source", "symbol", "bar_size", "price_type", "ts",
    "open", "high", "low", "close", "volume", "adj_close",
)  # fmt: skip
Row = tuple[str, str, str, str, datetime, float, float, float, float, float, None]
SESSION_OPEN_UTC = timedelta(hours=14, minutes=30)  # 09:30 New York in winter; good enough here
BARS_PER_SESSION = 390
SESSIONS_PER_YEAR = 252  # an exchange year: one symbol-year of 1m bars is 98,280 rows


def session_stamps(first: date, sessions: int) -> list[datetime]:
    """`sessions` weekdays from `first`, 390 one-minute bars each, as aware UTC datetimes."""
    stamps: list[datetime] = []
    day = first
    while len(stamps) < sessions * BARS_PER_SESSION:
        if day.weekday() < 5:
            opens = datetime(day.year, day.month, day.day, tzinfo=UTC) + SESSION_OPEN_UTC
            stamps.extend(opens + timedelta(minutes=m) for m in range(BARS_PER_SESSION))
        day += timedelta(days=1)
    return stamps


def rows(symbol: str, stamps: list[datetime], source: str = "sim") -> list[Row]:
    """One row per stamp with plausible, cheap prices (a saw-tooth around 100)."""
    out: list[Row] = []
    for index, ts in enumerate(stamps):
        price = 100.0 + (index % 977) * 0.01
        out.append((source, symbol, "1m", "trades", ts, price, price + 0.05, price - 0.05,
                    price + 0.01, 1000.0 + index % 500, None))  # fmt: skip
    return out


def batches(symbol_prefix: str, total: int, size: int) -> Iterator[list[Row]]:
    """`total` rows in batches of `size`, over as many symbols as it takes (a year each)."""
    year = session_stamps(date(2023, 1, 2), SESSIONS_PER_YEAR)
    made = 0
    number = 0
    while made < total:
        take = min(len(year), total - made)
        symbol_rows = rows(f"{symbol_prefix}{number:04d}", year[:take])
        for start in range(0, take, size):
            yield symbol_rows[start : start + size]
        made += take
        number += 1
