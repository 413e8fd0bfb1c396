"""Collected bars, as JSON or CSV."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel

from backfill_api.dependencies import ConnectionDep
from backfill_contracts import BarSize, as_utc
from backfill_readmodel import queries
from backfill_readmodel.views import BarView

router = APIRouter(tags=["bars"])


class BarsResponse(BaseModel):
    source: str
    symbol: str
    bar_size: str
    price_type: str
    count: int
    bars: list[BarView]


@router.get("/bars", response_model=BarsResponse)
async def get_bars(
    conn: ConnectionDep,
    source: str,
    symbol: str,
    bar_size: BarSize,
    start: datetime | None = Query(default=None, description="inclusive; naive means UTC"),
    end: datetime | None = Query(default=None, description="exclusive; naive means UTC"),
    price_type: str = "trades",
    format: Literal["json", "csv"] = "json",
) -> BarsResponse | Response:
    """Bars ordered by time (`ts` is the bar's open time, UTC)."""
    query = queries.BarQuery(
        source=source,
        symbol=symbol,
        bar_size=bar_size.value,
        price_type=price_type,
        start=None if start is None else as_utc(start),
        end=None if end is None else as_utc(end),
    )
    rows = await queries.bars_of(conn, query)
    if format == "csv":
        return Response(_csv(rows), media_type="text/csv")
    return BarsResponse(
        source=source,
        symbol=symbol,
        bar_size=bar_size.value,
        price_type=price_type,
        count=len(rows),
        bars=rows,
    )


def _csv(rows: list[BarView]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["ts", "open", "high", "low", "close", "volume"])
    for bar in rows:
        writer.writerow([bar.ts.isoformat(), bar.open, bar.high, bar.low, bar.close, bar.volume])
    return out.getvalue()
