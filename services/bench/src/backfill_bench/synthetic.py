"""Bar rows made here for COPY: the floor's batches and the read workload's big table."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta

BAR_COLUMNS = ("series_id", "ts", "open", "high", "low", "close", "volume", "adj_close")
Row = tuple[int, datetime, float, float, float, float, float, None]
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


def rows(series_id: int, stamps: list[datetime]) -> list[Row]:
    """One `bar_rows` row per stamp with plausible, cheap prices (a saw-tooth around 100)."""
    out: list[Row] = []
    for index, ts in enumerate(stamps):
        price = 100.0 + (index % 977) * 0.01
        out.append((series_id, ts, price, price + 0.05, price - 0.05, price + 0.01,
                    1000.0 + index % 500, None))  # fmt: skip
    return out


def series_for(total: int) -> int:
    """How many series (a year of bars each) `batches` fills with `total` rows."""
    return -(-total // (SESSIONS_PER_YEAR * BARS_PER_SESSION))


def batches(series_ids: Sequence[int], total: int, size: int) -> Iterator[list[Row]]:
    """`total` rows in batches of `size`: a year for each series in turn (see series_for)."""
    year = session_stamps(date(2023, 1, 2), SESSIONS_PER_YEAR)
    made = 0
    for series_id in series_ids:
        if made >= total:
            return
        take = min(len(year), total - made)
        series_rows = rows(series_id, year[:take])
        for start in range(0, take, size):
            yield series_rows[start : start + size]
        made += take
