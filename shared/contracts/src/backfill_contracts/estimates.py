"""How many requests a job needs and how long its source's pacing makes it take, before it runs.

The console shows this before a job is submitted. It counts windows the way each source's
planner cuts them, from the same tables (`backfill_contracts.limits`), but knows nothing the
source only tells at run time (IB's earliest bar, Yahoo's holidays): it is an upper bound on
requests and a lower bound on time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from backfill_contracts.bars import BarSize
from backfill_contracts.limits import (
    IBKR_MAX_SPAN,
    IBKR_PACING_BAR_SECONDS,
    SIM_YEARS_PER_CHUNK,
    YAHOO_LIMITS,
    YAHOO_REQUESTS_PER_S,
)
from backfill_contracts.sources import IbkrOptions, SimOptions, WhatToShow, parse_options


@dataclass(frozen=True, slots=True)
class PlanEstimate:
    requests: int
    seconds: float  # the least time the source's pacing allows for that many requests
    note: str  # how the figure was reached, in plain words


def estimate_plan(
    source: str, bar_size: BarSize, start: datetime, end: datetime, options: dict[str, Any]
) -> PlanEstimate:
    """Raises ValueError (an unknown source, bad options) like the API would."""
    parsed = parse_options(source, options)
    if end <= start:
        return PlanEstimate(0, 0.0, "an empty range needs no request")
    if source == "ibkr":
        assert isinstance(parsed, IbkrOptions)
        return _ibkr(bar_size, start, end, parsed)
    if source == "yahoo":
        return _yahoo(bar_size, start, end)
    assert isinstance(parsed, SimOptions)
    return _sim(bar_size, start, end, parsed)


def _windows(start: datetime, end: datetime, span: timedelta | None) -> int:
    if span is None:
        return 1
    return math.ceil((end - start) / span)


def _sim(bar_size: BarSize, start: datetime, end: datetime, options: SimOptions) -> PlanEstimate:
    latency_s = options.latency_ms / 1000
    if bar_size.is_intraday:
        days = (end - start).days + 1
        count = round(days * 5 / 7) or 1
        note = "one request per trading day"
    else:
        years = SIM_YEARS_PER_CHUNK[bar_size]
        count = end.year // years - start.year // years + 1
        note = f"one request per {years} year(s)"
    if latency_s:
        note += f", {options.latency_ms} ms each (latency_ms); the sim has no pacing"
    else:
        note += "; the sim has no pacing"
    return PlanEstimate(count, count * latency_s, note)


def _yahoo(bar_size: BarSize, start: datetime, end: datetime) -> PlanEstimate:
    limit = YAHOO_LIMITS.get(bar_size)
    if limit is None:
        return PlanEstimate(0, 0.0, f"Yahoo has no {bar_size.value} bars")
    count = _windows(start, end, limit.span)
    seconds = max(0.0, (count - 1) / YAHOO_REQUESTS_PER_S)
    return PlanEstimate(
        count, seconds, f"{count} request(s) at Yahoo's default {YAHOO_REQUESTS_PER_S:g}/s"
    )


def _ibkr(bar_size: BarSize, start: datetime, end: datetime, options: IbkrOptions) -> PlanEstimate:
    count = _windows(start, end, IBKR_MAX_SPAN[bar_size])
    weight = 2 if options.what_to_show is WhatToShow.BID_ASK else 1
    # 5 requests per 2 s for one contract; 60 per 10 minutes for bars of 30 s or less.
    seconds = max(0.0, (count * weight - 5) / 5 * 2)
    note = f"{count} request(s) of at most {IBKR_MAX_SPAN[bar_size]} each"
    duration = bar_size.duration
    if duration is not None and duration.total_seconds() <= IBKR_PACING_BAR_SECONDS:
        seconds = max(seconds, (count * weight - 60) / 60 * 600)
        note += "; IB allows 60 requests per 10 minutes for bars of 30 s or less"
    return PlanEstimate(count, seconds, note)
