"""Chunks within IB's step-size table, and requests IB reads one way only.

Every chunk asks for the longest duration IB allows for its bar size (backfill_contracts.limits)
and no more, ending at the chunk's end with an explicit zone (naive end times draw warning
2174). Durations up to a day are sent in seconds, which IB counts exactly; longer ones in
days, weeks, months or years, which IB counts back from the end: answers are then cut to the
chunk, so chunks never overlap whatever IB's calendar arithmetic.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from backfill_contracts import BarSize, ChunkSpec
from backfill_contracts.limits import IBKR_MAX_SPAN

IB_BAR_SIZE: dict[BarSize, str] = {
    BarSize.S1: "1 secs",
    BarSize.S5: "5 secs",
    BarSize.S10: "10 secs",
    BarSize.S15: "15 secs",
    BarSize.S30: "30 secs",
    BarSize.M1: "1 min",
    BarSize.M2: "2 mins",
    BarSize.M3: "3 mins",
    BarSize.M5: "5 mins",
    BarSize.M10: "10 mins",
    BarSize.M15: "15 mins",
    BarSize.M20: "20 mins",
    BarSize.M30: "30 mins",
    BarSize.H1: "1 hour",
    BarSize.H2: "2 hours",
    BarSize.H3: "3 hours",
    BarSize.H4: "4 hours",
    BarSize.H8: "8 hours",
    BarSize.D1: "1 day",
    BarSize.W1: "1W",
    BarSize.MO1: "1M",
}
_DAY = timedelta(days=1)


def plan_chunks(bar_size: BarSize, start: datetime, end: datetime) -> list[ChunkSpec]:
    span = IBKR_MAX_SPAN[bar_size]
    chunks: list[ChunkSpec] = []
    cursor = start
    while cursor < end:
        upper = min(cursor + span, end)
        chunks.append(ChunkSpec(index=len(chunks), start=cursor, end=upper))
        cursor = upper
    return chunks


def duration_for(bar_size: BarSize, start: datetime, end: datetime) -> str:
    """IB's durationStr covering [start, end), within the bar size's legal maximum."""
    length = end - start
    if length <= _DAY:
        return f"{max(1, int(-(-length.total_seconds() // 1)))} S"
    days = -(-length // _DAY)  # ceil
    if bar_size.is_intraday:
        # Within the step table: 2 mins -> 2 D, 3-20 mins -> 1 W, 30 mins to 8 hours -> 1 M.
        if days <= 2:
            return f"{days} D"
        if days <= 7:
            return "1 W"
        return "1 M"
    years = -(-days // 365)
    return f"{years} Y" if days > 31 else f"{days} D"


def end_time(end: datetime) -> str:
    """An end time IB reads as UTC, whatever the gateway's own zone."""
    return end.astimezone(UTC).strftime("%Y%m%d %H:%M:%S UTC")
