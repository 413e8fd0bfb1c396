"""Bars read as columns (numpy arrays), batch by batch: exports without a Python object per bar.

On PostgreSQL each batch is one `COPY (SELECT ...) TO STDOUT (FORMAT binary)`: every field of
the select list has a fixed width (adj_close is sent as a value plus an is-null flag), so the
whole batch is one numpy structured array read straight from the bytes. Reading 98,280 bars as
asyncpg records cost about 320 ms on the 2-core machine, the COPY and numpy about 150 ms
(issue #9's A6). Elsewhere (SQLite) the columns are made from backfill_readmodel.bar_batches'
rows. Keyset paging and batch boundaries are bar_batches': no bar read twice or skipped.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy.ext.asyncio import AsyncEngine

from backfill_readmodel.bar_batches import (
    DEFAULT_BATCH_SIZE,
    PG_MAX,
    PG_MIN,
    BarRow,
    bar_batches,
)
from backfill_readmodel.queries import BarQuery
from backfill_readmodel.tables import SERIES_ID_SQL

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_PG_EPOCH_US = 946_684_800_000_000  # PostgreSQL's binary timestamps count from 2000-01-01
_PRICES = ("open", "high", "low", "close", "volume")

Floats = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class BarColumns:
    """One batch: `ts` in microseconds since the Unix epoch (UTC), one float array per value,
    and `adj_close` with `adj_missing` True where it is NULL."""

    ts: npt.NDArray[np.int64]
    open: Floats
    high: Floats
    low: Floats
    close: Floats
    volume: Floats
    adj_close: Floats
    adj_missing: npt.NDArray[np.bool_]

    def __len__(self) -> int:
        return len(self.ts)

    def last_ts(self) -> datetime:
        return EPOCH + timedelta(microseconds=int(self.ts[-1]))

    def rows(self) -> list[BarRow]:
        """The batch as rows (BAR_COLUMNS), for the encoders and adjustments that want them."""
        stamps = [EPOCH + timedelta(microseconds=us) for us in self.ts.tolist()]
        adj = [
            None if missing else value
            for value, missing in zip(
                self.adj_close.tolist(), self.adj_missing.tolist(), strict=True
            )
        ]
        return list(
            zip(
                stamps,
                self.open.tolist(),
                self.high.tolist(),
                self.low.tolist(),
                self.close.tolist(),
                self.volume.tolist(),
                adj,
                strict=True,
            )
        )

    @classmethod
    def from_rows(cls, rows: Sequence[BarRow]) -> BarColumns:
        ts, o, h, lo, c, v, adj = (list(column) for column in zip(*rows, strict=True))
        return cls(
            ts=np.array([to_micros(t) for t in ts], dtype=np.int64),
            open=np.array(o, dtype=np.float64),
            high=np.array(h, dtype=np.float64),
            low=np.array(lo, dtype=np.float64),
            close=np.array(c, dtype=np.float64),
            volume=np.array(v, dtype=np.float64),
            adj_close=np.array([0.0 if a is None else a for a in adj], dtype=np.float64),
            adj_missing=np.array([a is None for a in adj], dtype=np.bool_),
        )


def to_micros(moment: datetime) -> int:
    """Microseconds since the Unix epoch, exactly (no float in between)."""
    return (moment - EPOCH) // timedelta(microseconds=1)


async def column_batches(
    engine: AsyncEngine, q: BarQuery, batch_size: int = DEFAULT_BATCH_SIZE
) -> AsyncIterator[BarColumns]:
    """Non-empty batches of at most `batch_size` bars, oldest first, as columns."""
    if engine.dialect.driver != "asyncpg":
        async for rows in bar_batches(engine, q, batch_size):
            yield BarColumns.from_rows(rows)
        return
    if batch_size < 1:
        raise ValueError("batch_size is at least 1")
    after, inclusive = q.start, True
    while True:
        async with engine.connect() as conn:
            raw = await conn.get_raw_connection()
            columns = await _copy_page(raw.driver_connection, q, after, inclusive, batch_size)
        if len(columns):
            yield columns
        if len(columns) < batch_size:
            return
        after, inclusive = columns.last_ts(), False


_COPY_PAGE = (
    "SELECT ts, open, high, low, close, volume, coalesce(adj_close, 0), adj_close IS NULL"
    f" FROM bar_rows WHERE series_id = ({SERIES_ID_SQL})"
    " AND ts {op} $5 AND ts < $6 ORDER BY ts LIMIT $7"
)
# One tuple of the binary COPY: a field count, then (length, value) per field, big-endian.
_TUPLE = np.dtype(
    [("fields", ">i2"), ("ts_len", ">i4"), ("ts", ">i8")]
    + [item for name in (*_PRICES, "adj_close") for item in ((f"{name}_len", ">i4"), (name, ">f8"))]
    + [("missing_len", ">i4"), ("missing", "u1")]
)
_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
_HEADER = len(_SIGNATURE) + 8  # flags and the header extension's length, both 0
_TRAILER = 2  # a field count of -1


async def _copy_page(
    driver: Any, q: BarQuery, after: datetime | None, inclusive: bool, limit: int
) -> BarColumns:
    sink = io.BytesIO()
    await driver.copy_from_query(
        _COPY_PAGE.format(op=">=" if inclusive else ">"),
        q.source,
        q.symbol,
        q.bar_size,
        q.price_type,
        after or PG_MIN,
        q.end or PG_MAX,
        limit,
        output=sink,
        format="binary",
    )
    return parse_binary_copy(sink.getbuffer())


def parse_binary_copy(data: memoryview | bytes) -> BarColumns:
    """The columns of a binary COPY of `_COPY_PAGE`'s select list."""
    view = memoryview(data)
    if bytes(view[: len(_SIGNATURE)]) != _SIGNATURE or bytes(view[-_TRAILER:]) != b"\xff\xff":
        raise ValueError("not a PostgreSQL binary COPY stream")
    if int.from_bytes(view[len(_SIGNATURE) + 4 : _HEADER], "big") != 0:
        raise ValueError("a binary COPY header extension this reader does not know")
    tuples = np.frombuffer(view[_HEADER:-_TRAILER], dtype=_TUPLE)
    if len(tuples) and not (tuples["fields"] == 8).all():
        raise ValueError("a binary COPY tuple without the 8 fields asked for")
    return BarColumns(
        ts=tuples["ts"].astype(np.int64) + _PG_EPOCH_US,
        open=tuples["open"].astype(np.float64),
        high=tuples["high"].astype(np.float64),
        low=tuples["low"].astype(np.float64),
        close=tuples["close"].astype(np.float64),
        volume=tuples["volume"].astype(np.float64),
        adj_close=tuples["adj_close"].astype(np.float64),
        adj_missing=tuples["missing"].astype(np.bool_),
    )
