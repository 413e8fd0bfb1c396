"""Planning against Yahoo's interval limits, with a day of margin, so no request draws a 422.

The limits (`backfill_contracts.limits.YAHOO_LIMITS`, shared with the console's estimates):
1m within 30 days, 8 days a request; 2m-90m within 60 days; 1h within 730 days; daily and
longer, the whole history in one request.
"""

from __future__ import annotations

from datetime import datetime

from backfill_contracts import BarSize, ChunkSpec, Outcome
from backfill_contracts.limits import YAHOO_LIMITS
from backfill_worker import SourceError

YAHOO_INTERVAL: dict[BarSize, str] = {
    BarSize.M1: "1m",
    BarSize.M2: "2m",
    BarSize.M5: "5m",
    BarSize.M15: "15m",
    BarSize.M30: "30m",
    BarSize.H1: "1h",
    BarSize.D1: "1d",
    BarSize.W1: "1wk",
    BarSize.MO1: "1mo",
}


def plan_chunks(
    bar_size: BarSize, start: datetime, end: datetime, now: datetime
) -> list[ChunkSpec]:
    """The requests for [start, end), or SourceError(INVALID_REQUEST) saying what is possible."""
    if bar_size not in YAHOO_INTERVAL:
        served = " ".join(size.value for size in YAHOO_INTERVAL)
        raise SourceError(
            Outcome.INVALID_REQUEST, f"Yahoo has no {bar_size.value} bars; it serves {served}"
        )
    limit = YAHOO_LIMITS[bar_size]
    end = min(end, now)  # the future has no bars yet
    if limit.lookback is not None and start < now - limit.lookback:
        earliest = now - limit.lookback
        raise SourceError(
            Outcome.INVALID_REQUEST,
            f"Yahoo serves {bar_size.value} bars only for the last {limit.lookback.days} days: "
            f"start at {earliest.isoformat(timespec='minutes')} or later, or use a coarser "
            "bar size (2m-30m: 59 days, 1h: 729 days, 1d and longer: all history)",
        )
    if start >= end:
        return []
    if limit.span is None:
        return [ChunkSpec(index=0, start=start, end=end)]
    chunks: list[ChunkSpec] = []
    cursor = start
    while cursor < end:
        upper = min(cursor + limit.span, end)
        chunks.append(ChunkSpec(index=len(chunks), start=cursor, end=upper))
        cursor = upper
    return chunks
