"""IB's bars as a BarBatch: UTC epoch seconds, cut to the chunk.

Intraday bars come back as aware datetimes (formatDate=2); daily and longer ones as dates,
which mean the session of that day on the exchange: they are stored at midnight in the
exchange's own zone, as Yahoo's daily bars are.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from backfill_contracts import BarBatch

# IB's timeZoneId names are mostly IANA ones; a few are its own.
_IB_ZONES = {"EST": "America/New_York", "CST": "America/Chicago", "MET": "Europe/Berlin"}


def exchange_zone(ib_zone: str | None) -> ZoneInfo:
    name = _IB_ZONES.get(ib_zone or "", ib_zone or "UTC")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def bar_time(value: Any, zone: ZoneInfo) -> int:
    if isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return int(aware.timestamp())
    if isinstance(value, date):
        return int(datetime.combine(value, time(0), zone).timestamp())
    raise TypeError(f"unexpected bar date {value!r}")


def to_batch(bars: Iterable[Any], start: datetime, end: datetime, zone: ZoneInfo) -> BarBatch:
    lo, hi = start.timestamp(), end.timestamp()
    stamped = ((bar_time(b.date, zone), b) for b in bars)
    # Sorted by time alone: two bars of one time (deduplicated below) must not be compared.
    rows = sorted(((ts, b) for ts, b in stamped if lo <= ts < hi), key=lambda row: row[0])
    seen: set[int] = set()
    columns: dict[str, list[Any]] = {
        k: [] for k in ("ts", "open", "high", "low", "close", "volume")
    }
    for ts, bar in rows:
        if ts in seen:
            continue
        seen.add(ts)
        columns["ts"].append(ts)
        columns["open"].append(float(bar.open))
        columns["high"].append(float(bar.high))
        columns["low"].append(float(bar.low))
        columns["close"].append(float(bar.close))
        # IB sends -1 for "no volume" (MIDPOINT, BID, ASK): stored as 0.
        columns["volume"].append(max(0.0, float(bar.volume)))
    return BarBatch(**columns)
