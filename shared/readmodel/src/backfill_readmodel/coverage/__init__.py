"""Series coverage: what a series holds, and its gaps against a trading calendar, with reasons.

A series is (source, instrument, bar size, price type). See `gaps` for the reasons a bar may be
missing, `slots` for how a calendar becomes expected bars, and `store` for the queries.
"""

from backfill_readmodel.coverage.calendars import UnknownCalendarError, calendar_for
from backfill_readmodel.coverage.gaps import Gap, GapKind
from backfill_readmodel.coverage.slots import RangeTooLargeError
from backfill_readmodel.coverage.store import (
    Series,
    coverage,
    held,
    list_series,
    measure,
)
from backfill_readmodel.coverage.views import CoverageView, DayView, GapView

__all__ = [
    "CoverageView",
    "DayView",
    "Gap",
    "GapKind",
    "GapView",
    "RangeTooLargeError",
    "Series",
    "UnknownCalendarError",
    "calendar_for",
    "coverage",
    "held",
    "list_series",
    "measure",
]
