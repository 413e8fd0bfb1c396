"""What a series holds: first and last bar, count, and its gaps against a trading calendar."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status

from backfill_api.dependencies import ConnectionDep
from backfill_contracts import SYMBOL_PATTERN, BarSize, as_utc, known_sources
from backfill_readmodel.coverage import (
    CoverageView,
    RangeTooLargeError,
    Series,
    UnknownCalendarError,
    coverage,
)

router = APIRouter(tags=["coverage"])

PRICE_TYPE = r"^[a-z_]{1,32}$"
CALENDAR = r"^[A-Za-z0-9_-]{1,16}$"


@router.get("/coverage", response_model=CoverageView)
async def get_coverage(
    conn: ConnectionDep,
    source: str,
    symbol: str,
    bar_size: BarSize,
    price_type: Annotated[str, Query(pattern=PRICE_TYPE)] = "trades",
    start: datetime | None = Query(
        default=None, description="inclusive; naive means UTC (default: the first bar)"
    ),
    end: datetime | None = Query(
        default=None, description="exclusive; naive means UTC (default: just past the last bar)"
    ),
    calendar: Annotated[
        str | None,
        Query(
            pattern=CALENDAR,
            description="`sim`, or an exchange_calendars name (XNYS, XLON, ...); "
            "default: `sim` for the sim source, XNYS otherwise",
        ),
    ] = None,
    days: bool = Query(default=False, description="add expected and held bars per session"),
) -> CoverageView:
    """The series' first and last bar and count, and each gap with its reason:
    `never_requested`, `no_data` (the source answered with nothing), `partial` (it answered
    with part of the window) or `failed` (a finished job did not collect it)."""
    if source not in known_sources():
        raise _invalid("source", f"unknown source; known sources: {known_sources()}")
    if not SYMBOL_PATTERN.fullmatch(symbol):
        raise _invalid("symbol", "symbol must be 1 to 32 characters of A-Z a-z 0-9 . ^ = _ -")
    lo = None if start is None else as_utc(start)
    hi = None if end is None else as_utc(end)
    if lo is not None and hi is not None and lo >= hi:
        raise _invalid("end", "start must be before end (start is inclusive, end exclusive)")
    series = Series(source, symbol, bar_size, price_type)
    try:
        return await coverage(conn, series, calendar=calendar, start=lo, end=hi, with_days=days)
    except UnknownCalendarError as error:
        raise _invalid("calendar", str(error)) from None
    except RangeTooLargeError as error:
        raise _invalid("end", str(error)) from None


def _invalid(field: str, message: str) -> HTTPException:
    detail = [{"loc": ["query", field], "msg": message, "type": "value_error"}]
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail)
