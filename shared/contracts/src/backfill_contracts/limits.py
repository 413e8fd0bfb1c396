"""What each source serves per request: the tables its planner and the estimates share."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from backfill_contracts.bars import BarSize

# IB's step-size table, inverted (SOURCES.md): the longest duration one request may ask for.
# A day bar or longer may span years in practice; a year keeps each answer small.
IBKR_MAX_SPAN: dict[BarSize, timedelta] = {
    BarSize.S1: timedelta(seconds=1800),
    BarSize.S5: timedelta(seconds=3600),
    BarSize.S10: timedelta(seconds=14400),
    BarSize.S15: timedelta(seconds=14400),
    BarSize.S30: timedelta(seconds=28800),
    BarSize.M1: timedelta(days=1),
    BarSize.M2: timedelta(days=2),
    BarSize.M3: timedelta(weeks=1),
    BarSize.M5: timedelta(weeks=1),
    BarSize.M10: timedelta(weeks=1),
    BarSize.M15: timedelta(weeks=1),
    BarSize.M20: timedelta(weeks=1),
    BarSize.M30: timedelta(days=28),
    BarSize.H1: timedelta(days=28),
    BarSize.H2: timedelta(days=28),
    BarSize.H3: timedelta(days=28),
    BarSize.H4: timedelta(days=28),
    BarSize.H8: timedelta(days=28),
    BarSize.D1: timedelta(days=365),
    BarSize.W1: timedelta(days=365),
    BarSize.MO1: timedelta(days=365),
}
# IB enforces "60 requests in 10 minutes" for bars of this many seconds or less.
IBKR_PACING_BAR_SECONDS = 30


@dataclass(frozen=True, slots=True)
class YahooLimit:
    lookback: timedelta | None  # how far back Yahoo serves this interval (minus a day)
    span: timedelta | None  # the longest window one request may ask for (minus a day)


# Yahoo's chart API serves intraday intervals only for recent history and 1m bars only a week
# per request (SOURCES.md, re-checked against yfinance 1.7). Intraday windows are cut into weeks
# (1h: 60 days): Yahoo would take longer ones, but smaller chunks show progress, resume finer
# after a crash and keep each answer small.
_INTRADAY_60D = YahooLimit(lookback=timedelta(days=59), span=timedelta(days=7))
YAHOO_LIMITS: dict[BarSize, YahooLimit] = {
    BarSize.M1: YahooLimit(lookback=timedelta(days=29), span=timedelta(days=7)),
    BarSize.M2: _INTRADAY_60D,
    BarSize.M5: _INTRADAY_60D,
    BarSize.M15: _INTRADAY_60D,
    BarSize.M30: _INTRADAY_60D,
    BarSize.H1: YahooLimit(lookback=timedelta(days=729), span=timedelta(days=60)),
    BarSize.D1: YahooLimit(lookback=None, span=None),
    BarSize.W1: YahooLimit(lookback=None, span=None),
    BarSize.MO1: YahooLimit(lookback=None, span=None),
}
YAHOO_REQUESTS_PER_S = 1.0  # the yahoo-worker's default budget (BACKFILL_YAHOO_REQUESTS_PER_S)

# The sim's coarse chunks: years per request, about what one request to a real source returns.
SIM_YEARS_PER_CHUNK: dict[BarSize, int] = {BarSize.D1: 1, BarSize.W1: 10, BarSize.MO1: 10}
