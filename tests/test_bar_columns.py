"""Bars read as columns (binary COPY on PostgreSQL) hold exactly what the row reader reads, and
the columnar encoders write exactly what the row encoders wrote: edge floats, NULL and present
adj_close, bars off the whole second, batch boundaries, on SQLite and PostgreSQL."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pyarrow.parquet as pq
import pytest

from backfill_api.bar_formats import JsonBars, ParquetBars, Series
from backfill_readmodel.bar_batches import bar_batches
from backfill_readmodel.bar_columns import BarColumns, column_batches, parse_binary_copy
from backfill_readmodel.queries import BarQuery
from tests.support.bars import store_bars
from tests.support.stack import running_stack

START = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
EDGES = [1.0, 100.0, 1e16, 1e-7, 0.1, -3.5, 123456789.12345679, 5e-324, 1.7976931348623157e308]


def stored_bars(symbol: str, count: int, *, fraction: bool = False) -> list[dict[str, Any]]:
    rows = []
    for i in range(count):
        ts = START + timedelta(minutes=i, microseconds=250_000 if fraction and i == 3 else 0)
        value = EDGES[i % len(EDGES)]
        rows.append(
            {
                "source": "sim",
                "symbol": symbol,
                "bar_size": "1m",
                "price_type": "trades",
                "ts": ts,
                "open": value,
                "high": value * 2,
                "low": -value,
                "close": value + i,
                "volume": float(i),
                "adj_close": None if i % 3 else value / 3,
            }
        )
    return rows


def row_json(rows: list[Any]) -> bytes:
    """What the encoder wrote before columns: orjson of one dict per row."""
    keys = ("ts", "open", "high", "low", "close", "volume", "adj_close")
    dicts = [dict(zip(keys, row, strict=True)) for row in rows]
    return orjson.dumps(dicts, option=orjson.OPT_UTC_Z)


@pytest.mark.parametrize("fraction", [False, True], ids=["whole-seconds", "a-fraction"])
async def test_columns_hold_what_rows_hold_and_encode_the_same(
    redis_url: str, database_url: str, namespace: str, fraction: bool
) -> None:
    async with running_stack(redis_url, database_url, namespace, with_worker=False) as stack:
        async with stack.engine.begin() as conn:
            await store_bars(conn, stored_bars("COLS", 40, fraction=fraction))
            await store_bars(conn, stored_bars("OTHER", 5))
        query = BarQuery("sim", "COLS", "1m", "trades", START + timedelta(minutes=1), None)
        rows = [row async for batch in bar_batches(stack.engine, query, 7) for row in batch]
        batches = [c async for c in column_batches(stack.engine, query, 7)]
        assert [len(c) for c in batches] == [7, 7, 7, 7, 7, 4]  # 39 bars from minute 1 on
        assert [row for c in batches for row in c.rows()] == [tuple(r) for r in rows]
        assert any(r[6] is None for r in rows)
        assert any(r[6] is not None for r in rows)

        encoder = JsonBars(Series("sim", "COLS", "1m", "trades"))
        body = encoder.head() + b"".join(encoder.batch(c) for c in batches) + encoder.tail(39)
        document = orjson.loads(body)
        assert orjson.dumps(document["bars"], option=orjson.OPT_UTC_Z) == row_json(rows)
        assert body.split(b'"bars":')[1].startswith(row_json(rows)[:-1])  # the very bytes

        parquet = ParquetBars(Series("sim", "COLS", "1m", "trades"))
        data = parquet.head() + b"".join(parquet.batch(c) for c in batches) + parquet.tail(39)
        table = pq.read_table(io.BytesIO(data))
        assert [tuple(r.values()) for r in table.to_pylist()] == [tuple(r) for r in rows]


def test_a_stream_that_is_not_a_binary_copy_is_refused() -> None:
    with pytest.raises(ValueError, match="not a PostgreSQL binary COPY"):
        parse_binary_copy(b"ts,open\n")
    empty = parse_binary_copy(b"PGCOPY\n\xff\r\n\x00" + bytes(8) + b"\xff\xff")
    assert len(empty) == 0
    assert isinstance(empty, BarColumns)
