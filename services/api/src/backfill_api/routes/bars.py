"""Collected bars as JSON, CSV or Parquet, streamed batch by batch for ranges of any size.

Every format has the same canonical columns in the same order, whatever the source: ts, open,
high, low, close, volume, adj_close (only Yahoo fills it). `adjust` scales them on the way out
(backfill_readmodel.adjustments); the stored bars never change. The request is checked and the first
batch read before the response starts, so bad input is a plain 422 and a database outage a
plain error; after that, memory holds one batch at a time.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Query, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from backfill_api.bar_formats import MEDIA_TYPES, BarEncoder, Format, Series, encoder_for
from backfill_api.dependencies import ServicesDep
from backfill_contracts import (
    ADJUSTED_PRICE_TYPES,
    SPLITS_IN_PRICES,
    SYMBOL_PATTERN,
    BarSize,
    as_utc,
    known_sources,
)
from backfill_readmodel import queries
from backfill_readmodel.adjustments import Adjust, Factors, factors_for
from backfill_readmodel.bar_columns import BarColumns, column_batches
from backfill_readmodel.views import BarView

router = APIRouter(tags=["bars"])

PRICE_TYPE = r"^[a-z_]{1,32}$"
_ACCEPTED = {
    "text/csv": "csv",
    "application/vnd.apache.parquet": "parquet",
    "application/x-parquet": "parquet",
}


class BarsResponse(BaseModel):
    source: str
    symbol: str
    bar_size: str
    price_type: str
    adjust: str  # none, splits or all: what was applied to the bars below
    bars: list[BarView]  # documents the streamed body; rows are encoded by bar_formats
    count: int


ADJUST_HELP = (
    "`none` (default): the bars as collected. `splits`: open, high, low and close of every bar "
    "before a split's ex-date divided by the split ratio (4.0 for 4:1), its volume multiplied "
    "by it. `all`: splits, and for each cash dividend every earlier bar's open, high, low and "
    "close multiplied by 1 - dividend / close of the last bar before the ex-date (the previous "
    "trading day's close for daily bars); volume stays. This is standard back-adjustment: the "
    "latest bars are as traded, factors multiply, and the stored bars never change. Yahoo and "
    "IBKR send prices that are split-adjusted already, so for them `splits` changes nothing "
    "and `all` applies the dividends only. Price types adjusted by the source (`adjusted`, "
    "`adjusted_last`) take `none` only."
)

_FILES = {
    "description": "The same bars as CSV (a header, then one bar per line) or as Parquet "
    "(ts as timestamp[us, UTC], one row group per batch, the series in key-value metadata).",
    "content": {
        MEDIA_TYPES["csv"]: {"schema": {"type": "string"}},
        MEDIA_TYPES["parquet"]: {"schema": {"type": "string", "format": "binary"}},
    },
}


@router.get("/bars", response_model=BarsResponse, responses={200: _FILES})
async def get_bars(
    services: ServicesDep,
    source: str,
    symbol: str,
    bar_size: BarSize,
    start: datetime | None = Query(default=None, description="inclusive; naive means UTC"),
    end: datetime | None = Query(default=None, description="exclusive; naive means UTC"),
    price_type: Annotated[str, Query(pattern=PRICE_TYPE)] = "trades",
    adjust: Adjust = Query(default=Adjust.NONE, description=ADJUST_HELP),
    format: Format | None = Query(
        default=None, description="json (default), csv or parquet; absent: from `Accept`"
    ),
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> StreamingResponse:
    """Bars ordered by time (`ts` is the bar's open time, UTC), streamed."""
    if source not in known_sources():
        raise _invalid("source", f"unknown source; known sources: {known_sources()}")
    if not SYMBOL_PATTERN.fullmatch(symbol):
        raise _invalid("symbol", "symbol must be 1 to 32 characters of A-Z a-z 0-9 . ^ = _ -")
    first_ts = None if start is None else as_utc(start)
    last_ts = None if end is None else as_utc(end)
    if first_ts is not None and last_ts is not None and first_ts >= last_ts:
        raise _invalid("end", "start must be before end (start is inclusive, end exclusive)")
    if adjust is not Adjust.NONE and price_type in ADJUSTED_PRICE_TYPES:
        raise _invalid("adjust", f"price type {price_type!r} is adjusted by its source already")
    chosen: Format = format or _from_accept(accept)
    series = Series(source, symbol, bar_size.value, price_type, adjust.value)
    query = queries.BarQuery(source, symbol, bar_size.value, price_type, first_ts, last_ts)
    async with services.engine.connect() as conn:
        factors = await factors_for(
            conn, query, adjust, splits_in_prices=source in SPLITS_IN_PRICES
        )
    batches = aiter(
        _adjusted(
            column_batches(services.engine, query, services.settings.bars_batch_size), factors
        )
    )
    first = await anext(batches, None)
    headers = {}
    if chosen != "json":
        headers["Content-Disposition"] = f'attachment; filename="{_file_name(series, chosen)}"'
    return StreamingResponse(
        _stream(encoder_for(chosen, series), first, batches),
        media_type=MEDIA_TYPES[chosen],
        headers=headers,
    )


async def _adjusted(
    batches: AsyncIterator[BarColumns], factors: Factors
) -> AsyncIterator[BarColumns]:
    async for columns in batches:
        yield factors.apply_columns(columns)


async def _stream(
    encoder: BarEncoder, first: BarColumns | None, rest: AsyncIterator[BarColumns]
) -> AsyncIterator[bytes]:
    yield encoder.head()
    count = 0
    if first is not None:
        count += len(first)
        yield await _encoded(encoder, first)
        async for rows in rest:
            count += len(rows)
            yield await _encoded(encoder, rows)
    yield encoder.tail(count)


async def _encoded(encoder: BarEncoder, columns: BarColumns) -> bytes:
    if encoder.offload:
        return await asyncio.to_thread(encoder.batch, columns)
    return encoder.batch(columns)


def _from_accept(accept: str | None) -> Format:
    for part in (accept or "").split(","):
        found = _ACCEPTED.get(part.split(";")[0].strip().lower())
        if found == "csv":
            return "csv"
        if found == "parquet":
            return "parquet"
    return "json"


def _file_name(series: Series, format: Format) -> str:
    name = f"{series.source}-{series.symbol}-{series.bar_size}-{series.price_type}"
    if series.adjust != "none":
        name += f"-adjusted-{series.adjust}"
    name += f".{format}"
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


def _invalid(field: str, message: str) -> HTTPException:
    """422 in the shape request validation uses, so clients read one kind of error."""
    detail = [{"loc": ["query", field], "msg": message, "type": "value_error"}]
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail)
