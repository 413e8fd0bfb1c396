"""Canonical bar sizes shared by every source, and the columnar bar batch carried by events."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, model_validator


class BarSize(StrEnum):
    """A bar size every source maps to its own vocabulary (IB's "5 mins", Yahoo's "5m")."""

    S1 = "1s"
    S5 = "5s"
    S10 = "10s"
    S15 = "15s"
    S30 = "30s"
    M1 = "1m"
    M2 = "2m"
    M3 = "3m"
    M5 = "5m"
    M10 = "10m"
    M15 = "15m"
    M20 = "20m"
    M30 = "30m"
    H1 = "1h"
    H2 = "2h"
    H3 = "3h"
    H4 = "4h"
    H8 = "8h"
    D1 = "1d"
    W1 = "1w"
    MO1 = "1mo"

    @property
    def is_intraday(self) -> bool:
        return self not in (BarSize.D1, BarSize.W1, BarSize.MO1)

    @property
    def duration(self) -> timedelta | None:
        """Fixed length of one bar; None for a calendar month, which has none."""
        return _DURATIONS.get(self)


_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATIONS: dict[BarSize, timedelta] = {
    size: timedelta(seconds=int(size.value[:-1]) * _UNIT_SECONDS[size.value[-1]])
    for size in BarSize
    if size is not BarSize.MO1
}


class BarBatch(BaseModel):
    """Bars in columns: compact on the wire and cheap to validate for thousands of rows.

    `ts` is the bar's open time in epoch seconds, UTC.
    """

    model_config = ConfigDict(frozen=True)

    ts: list[int] = []
    open: list[float] = []
    high: list[float] = []
    low: list[float] = []
    close: list[float] = []
    volume: list[float] = []
    # Close adjusted for splits and dividends, where the source provides it (Yahoo).
    adj_close: list[float | None] | None = None

    @model_validator(mode="after")
    def _columns_align(self) -> BarBatch:
        n = len(self.ts)
        lengths = [len(c) for c in (self.open, self.high, self.low, self.close, self.volume)]
        if self.adj_close is not None:
            lengths.append(len(self.adj_close))
        if any(length != n for length in lengths):
            raise ValueError("every bar column must have as many values as ts")
        return self

    def __len__(self) -> int:
        return len(self.ts)


class CorporateAction(BaseModel):
    """A dividend (cash per share) or a split (new shares per old share) on a day."""

    model_config = ConfigDict(frozen=True)

    ts: int  # epoch seconds, UTC
    kind: Literal["dividend", "split"]
    value: float
