"""A series' coverage as an ECharts calendar heatmap: one cell per session, one row per year.

A pure function of the per-session counts, so it is tested without a browser. A cell's value
is the share of the session's expected bars that are stored (0 red, 1 green); days without a
session have no cell.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from backfill_readmodel.coverage import DayView

CELL = 13  # px: a year of weeks fits the page's width
YEAR_HEIGHT = CELL * 7 + 30


def heatmap_options(days: Sequence[DayView]) -> dict[str, Any]:
    years = sorted({d.day.year for d in days})
    calendars = [
        {
            "range": str(year),
            "top": 40 + i * YEAR_HEIGHT,
            "left": 40,
            "right": 10,
            "cellSize": ["auto", CELL],
            "yearLabel": {"show": True},
            "dayLabel": {"firstDay": 1, "nameMap": "en"},
            "splitLine": {"show": False},
        }
        for i, year in enumerate(years)
    ]
    series = [
        {
            "type": "heatmap",
            "coordinateSystem": "calendar",
            "calendarIndex": i,
            "name": str(year),
            "data": [
                [d.day.isoformat(), round(d.held / d.expected, 4) if d.expected else 0.0]
                for d in days
                if d.day.year == year
            ],
        }
        for i, year in enumerate(years)
    ]
    return {
        "tooltip": {"position": "top"},
        "visualMap": {
            "min": 0,
            "max": 1,
            "orient": "horizontal",
            "left": "center",
            "top": 0,
            "text": ["all stored", "none"],
            "inRange": {"color": ["#d32f2f", "#fbc02d", "#388e3c"]},
        },
        "calendar": calendars,
        "series": series,
    }


def heatmap_height(days: Sequence[DayView]) -> int:
    """Pixels for the chart: a band per year."""
    return 50 + max(1, len({d.day.year for d in days})) * YEAR_HEIGHT
