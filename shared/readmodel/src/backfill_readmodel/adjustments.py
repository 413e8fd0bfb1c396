"""Bars adjusted for splits and dividends on the way out; the bars table keeps them as collected.

The convention is standard back-adjustment (CRSP's): the latest bars stay as traded and every
earlier bar is scaled by the actions that came after it.

- A split of ratio r (new shares per old share, 4.0 for 4:1) on its ex-date: open, high, low
  and close of every bar before the ex-date are divided by r, and its volume multiplied by r.
- A cash dividend d on its ex-date: open, high, low and close of every bar before the ex-date
  are multiplied by 1 - d / c, where c is the close of the series' last bar before the ex-date
  (the previous trading day's close for daily bars). Volume stays.

"Before the ex-date" is `bar.ts < action.ts`: a bar stamped at the action's own time is on
the ex-date and stays as it is. Factors multiply, so a bar before several actions takes them
all. A dividend with no bar before it in the series changes no bar, and is left out.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

import numpy as np
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from backfill_readmodel.bar_batches import BarRow
from backfill_readmodel.bar_columns import BarColumns, to_micros
from backfill_readmodel.queries import BarQuery
from backfill_readmodel.tables import bar_rows, corporate_actions, series_id_of


class Adjust(StrEnum):
    """What `GET /bars?adjust=` applies to the stored bars."""

    NONE = "none"
    SPLITS = "splits"
    ALL = "all"  # splits and dividends


@dataclass(frozen=True, slots=True)
class Step:
    """One ex-date: every bar before `ts` is scaled by these factors (and the later steps')."""

    ts: datetime
    price: float
    volume: float


@dataclass(frozen=True, slots=True)
class Factors:
    """Cumulative factors per ex-date, ready to scale rows in O(log n) each."""

    stamps: tuple[datetime, ...] = ()
    # price[i], volume[i]: the product of the steps i, i+1, ...; one more entry (1.0) at the end.
    price: tuple[float, ...] = (1.0,)
    volume: tuple[float, ...] = (1.0,)

    @classmethod
    def of(cls, steps: Sequence[Step]) -> Factors:
        ordered = sorted(steps, key=lambda s: s.ts)
        price, volume = [1.0], [1.0]
        for step in reversed(ordered):
            price.append(price[-1] * step.price)
            volume.append(volume[-1] * step.volume)
        return cls(tuple(s.ts for s in ordered), tuple(reversed(price)), tuple(reversed(volume)))

    @property
    def identity(self) -> bool:
        return not self.stamps

    def apply_columns(self, columns: BarColumns) -> BarColumns:
        """`apply` for a batch of columns: the same factors, chosen by one binary search each."""
        if self.identity:
            return columns
        stamps = np.array([to_micros(ts) for ts in self.stamps], dtype=np.int64)
        i = np.searchsorted(stamps, columns.ts, side="right")  # the first ex-date after the bar
        p, q = np.asarray(self.price)[i], np.asarray(self.volume)[i]
        return replace(
            columns,
            open=columns.open * p,
            high=columns.high * p,
            low=columns.low * p,
            close=columns.close * p,
            volume=columns.volume * q,
        )

    def apply(self, rows: Sequence[BarRow]) -> list[BarRow]:
        out: list[BarRow] = []
        for ts, o, h, lo, c, v, adj in rows:
            i = bisect_right(self.stamps, ts)  # the first ex-date after the bar
            p, q = self.price[i], self.volume[i]
            out.append((ts, o * p, h * p, lo * p, c * p, v * q, adj))
        return out


def split_step(ts: datetime, ratio: float) -> Step:
    return Step(ts, 1.0 / ratio, ratio)


def dividend_step(ts: datetime, amount: float, previous_close: float) -> Step:
    return Step(ts, 1.0 - amount / previous_close, 1.0)


async def factors_for(
    conn: AsyncConnection, q: BarQuery, adjust: Adjust, *, splits_in_prices: bool = False
) -> Factors:
    """The factors that adjust the series of `q` (every action of its symbol counts, not only
    those in q's range: a bar is scaled by everything after it).

    `splits_in_prices`: the source sends prices already split-adjusted (Yahoo, IB's TRADES), so
    splits change nothing; only dividends are applied then.
    """
    if adjust is Adjust.NONE:
        return Factors()
    kinds = ["split"] if adjust is Adjust.SPLITS else ["split", "dividend"]
    query = (
        select(corporate_actions.c.ts, corporate_actions.c.kind, corporate_actions.c.value)
        .where(
            corporate_actions.c.source == q.source,
            corporate_actions.c.symbol == q.symbol,
            corporate_actions.c.kind.in_(kinds),
        )
        .order_by(corporate_actions.c.ts)
    )
    steps: list[Step] = []
    for ts, kind, value in (await conn.execute(query)).all():
        if kind == "split":
            if not splits_in_prices and value > 0:
                steps.append(split_step(ts, value))
            continue
        previous = await _close_before(conn, q, ts)
        if previous is not None and previous > 0:
            steps.append(dividend_step(ts, value, previous))
    return Factors.of(steps)


async def _close_before(conn: AsyncConnection, q: BarQuery, ts: datetime) -> float | None:
    query = (
        select(bar_rows.c.close)
        .where(
            bar_rows.c.series_id == series_id_of(q.source, q.symbol, q.bar_size, q.price_type),
            bar_rows.c.ts < ts,
        )
        .order_by(bar_rows.c.ts.desc())
        .limit(1)
    )
    close: float | None = (await conn.execute(query)).scalar_one_or_none()
    return close
