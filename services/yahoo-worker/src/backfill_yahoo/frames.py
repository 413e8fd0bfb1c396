"""From a yfinance DataFrame to our bars and corporate actions. Pure; pandas stays in here."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from backfill_contracts import BarBatch, CorporateAction


@dataclass(frozen=True, slots=True)
class Collected:
    bars: BarBatch
    actions: list[CorporateAction]
    exchange_tz: str | None


def _finite(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def from_history(frame: Any, start: datetime, end: datetime) -> Collected:
    """Rows of `Ticker.history(auto_adjust=False, actions=True)` with start <= ts < end, in UTC.

    Rows without prices (dividend-only rows, gaps) are not bars; their actions are kept.
    """
    lo, hi = int(start.timestamp()), int(end.timestamp())
    columns: dict[str, list[Any]] = {
        name: [] for name in ("ts", "open", "high", "low", "close", "volume", "adj_close")
    }
    actions: list[CorporateAction] = []
    tz = None
    if len(frame.index) and frame.index.tz is not None:
        tz = str(frame.index.tz)
    for stamp, row in frame.iterrows():
        ts = int(stamp.timestamp())
        if not lo <= ts < hi:
            continue
        dividend = row.get("Dividends", 0.0)
        split = row.get("Stock Splits", 0.0)
        if _finite(dividend) and dividend:
            actions.append(CorporateAction(ts=ts, kind="dividend", value=float(dividend)))
        if _finite(split) and split:
            actions.append(CorporateAction(ts=ts, kind="split", value=float(split)))
        prices = [row.get(name) for name in ("Open", "High", "Low", "Close")]
        if not all(_finite(p) for p in prices):
            continue
        columns["ts"].append(ts)
        for name, value in zip(("open", "high", "low", "close"), prices, strict=True):
            columns[name].append(float(value))
        volume = row.get("Volume", 0.0)
        columns["volume"].append(float(volume) if _finite(volume) else 0.0)
        adj = row.get("Adj Close")
        columns["adj_close"].append(float(adj) if _finite(adj) else None)
    return Collected(BarBatch(**columns), actions, tz)


def adjusted(bars: BarBatch) -> BarBatch:
    """Open, high, low and close scaled by adj_close / close, as yfinance's auto_adjust does.

    The volume stays as traded; a bar without an adjusted close is kept as it is.
    """
    ratios = [
        adj / close if adj is not None and close else 1.0
        for adj, close in zip(bars.adj_close or [None] * len(bars), bars.close, strict=True)
    ]

    def scaled(values: list[float]) -> list[float]:
        return [value * ratio for value, ratio in zip(values, ratios, strict=True)]

    return bars.model_copy(
        update={
            "open": scaled(bars.open),
            "high": scaled(bars.high),
            "low": scaled(bars.low),
            "close": scaled(bars.close),
        }
    )
