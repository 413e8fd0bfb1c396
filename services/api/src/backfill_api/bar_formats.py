"""Bars encoded batch by batch as JSON, CSV or Parquet, for a streamed response.

Each encoder turns a batch of rows (backfill_readmodel.bar_batches.BAR_COLUMNS, in that order)
into the next bytes of one document: `head()` first, `batch(rows)` per batch, `tail(count)`
last. No per-row models: rows stay tuples, orjson and pyarrow do the encoding.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import orjson
import pyarrow as pa  # pyarrow ships no type hints
import pyarrow.parquet as pq

from backfill_readmodel.bar_batches import BAR_COLUMNS, BarRow

Format = Literal["json", "csv", "parquet"]
MEDIA_TYPES: dict[Format, str] = {
    "json": "application/json",
    "csv": "text/csv",
    "parquet": "application/vnd.apache.parquet",
}


@dataclass(frozen=True, slots=True)
class Series:
    """Which bars a document holds: named in the JSON envelope, the file name, Parquet's
    key-value metadata."""

    source: str
    symbol: str
    bar_size: str
    price_type: str
    adjust: str = "none"

    def as_dict(self) -> dict[str, str]:
        return {
            "source": self.source,
            "symbol": self.symbol,
            "bar_size": self.bar_size,
            "price_type": self.price_type,
            "adjust": self.adjust,
        }


class BarEncoder(Protocol):
    # True: batch() is CPU work worth taking off the event loop.
    offload: bool

    def head(self) -> bytes: ...
    def batch(self, rows: Sequence[BarRow]) -> bytes: ...
    def tail(self, count: int) -> bytes: ...


class JsonBars:
    """`{source, symbol, bar_size, price_type, adjust, bars: [{ts, open, ...}], count}`;
    `count` comes last because it is known last."""

    offload = False

    def __init__(self, series: Series) -> None:
        self.series = series
        self.first = True

    def head(self) -> bytes:
        return orjson.dumps(self.series.as_dict())[:-1] + b',"bars":['

    def batch(self, rows: Sequence[BarRow]) -> bytes:
        # A dict display per row: several times faster than dict(zip(BAR_COLUMNS, row)).
        items = orjson.dumps(
            [
                {"ts": t, "open": o, "high": h, "low": lo, "close": c, "volume": v, "adj_close": a}
                for t, o, h, lo, c, v, a in rows
            ],
            option=orjson.OPT_UTC_Z,
        )[1:-1]
        separator = b"" if self.first else b","
        self.first = False
        return separator + items

    def tail(self, count: int) -> bytes:
        return b'],"count":' + str(count).encode() + b"}"


class CsvBars:
    """A header, then one bar per line; `ts` in ISO 8601 UTC, an absent adj_close empty."""

    offload = False

    def head(self) -> bytes:
        return (",".join(BAR_COLUMNS) + "\n").encode()

    def batch(self, rows: Sequence[BarRow]) -> bytes:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerows((row[0].isoformat(), *row[1:]) for row in rows)
        return out.getvalue().encode()

    def tail(self, count: int) -> bytes:
        return b""


class _Drain:
    """A write-only file for pyarrow that hands over what was written so far, while `tell()`
    keeps counting from the file's start (the footer records row groups by offset)."""

    closed = False

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.position = 0

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self.parts.append(chunk)
        self.position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self.position

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def take(self) -> bytes:
        out = b"".join(self.parts)
        self.parts.clear()
        return out


SCHEMA = pa.schema(
    [
        pa.field("ts", pa.timestamp("us", tz="UTC"), nullable=False),
        *(pa.field(name, pa.float64(), nullable=False) for name in BAR_COLUMNS[1:-1]),
        pa.field("adj_close", pa.float64()),
    ]
)


class ParquetBars:
    """One row group per batch, written out as soon as it is encoded."""

    offload = True

    def __init__(self, series: Series) -> None:
        self.sink = _Drain()
        self.schema = SCHEMA.with_metadata(
            {f"backfill.{k}": v for k, v in series.as_dict().items()}
        )
        self.writer = pq.ParquetWriter(pa.PythonFile(self.sink, mode="w"), self.schema)

    def head(self) -> bytes:
        return self.sink.take()

    def batch(self, rows: Sequence[BarRow]) -> bytes:
        columns = list(zip(*rows, strict=True))
        arrays = [
            pa.array(values, type=field.type)
            for values, field in zip(columns, self.schema, strict=True)
        ]
        self.writer.write_table(pa.Table.from_arrays(arrays, schema=self.schema))
        return self.sink.take()

    def tail(self, count: int) -> bytes:
        self.writer.close()
        return self.sink.take()


def encoder_for(format: Format, series: Series) -> BarEncoder:
    if format == "csv":
        return CsvBars()
    if format == "parquet":
        return ParquetBars(series)
    return JsonBars(series)
