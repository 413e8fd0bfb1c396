"""What coverage readers get back: the API serves these, the console draws them."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel


class GapView(BaseModel):
    start: datetime  # the first missing bar's time
    end: datetime  # exclusive: where the last missing bar would end
    bars: int  # missing bars
    kind: str  # never_requested, no_data, partial, failed


class DayView(BaseModel):
    """One session, for the calendar heatmap."""

    day: date
    expected: int
    held: int


class CoverageView(BaseModel):
    source: str
    symbol: str
    bar_size: str
    price_type: str
    calendar: str
    first: datetime | None  # the first and last stored bars, whatever the range
    last: datetime | None
    count: int  # bars stored, whatever the range
    start: datetime | None  # the range measured (default: first to last bar)
    end: datetime | None
    expected: int  # bars the calendar expects in the range
    held: int  # of those, bars stored
    gaps: list[GapView]
    days: list[DayView] | None = None
