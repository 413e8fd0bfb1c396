"""Bars out: `GET /api/v1/bars` as JSON, CSV and Parquet, streamed batch by batch.

A sim job collects the bars through the whole pipeline; the API reads them back in batches of
BATCH rows (set small through its settings), so every range below spans many batches.
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from backfill_readmodel.queries import BarQuery, bars_of
from tests.support.stack import ADMIN_TOKEN, Stack, running_stack

BATCH = 7
JOB = {
    "source": "sim",
    "symbol": "AAPL",
    "bar_size": "1m",
    "start": "2024-01-02",
    "end": "2024-01-05",
}
SERIES = {"source": "sim", "symbol": "AAPL", "bar_size": "1m"}
COLUMNS = ["ts", "open", "high", "low", "close", "volume", "adj_close"]
BARS = 3 * 390  # three sim days of one-minute bars


@pytest.fixture
async def stack(redis_url: str, database_url: str, namespace: str) -> AsyncIterator[Stack]:
    async with running_stack(redis_url, database_url, namespace, bars_batch_size=BATCH) as stack:
        job_id = await stack.submit(**JOB)
        assert (await stack.wait_job(job_id))["status"] == "succeeded"
        yield stack


async def get_bars(stack: Stack, **params: Any) -> Any:
    response = await stack.api.get("/api/v1/bars", params={**SERIES, **params})
    assert response.status_code == 200, response.text
    return response


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


async def asgi_body_parts(stack: Stack, query: dict[str, str]) -> list[bytes]:
    """The response's body as the app sent it, message by message (httpx joins them)."""
    assert stack.transport is not None
    app = stack.transport.app  # type: ignore[attr-defined]
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "server": ("api", 80), "client": ("127.0.0.1", 1), "root_path": "",
        "path": "/api/v1/bars", "raw_path": b"/api/v1/bars",
        "query_string": urlencode(query).encode(),
        "headers": [(b"host", b"api"), (b"authorization", f"Bearer {ADMIN_TOKEN}".encode())],
    }  # fmt: skip
    parts: list[bytes] = []
    statuses: list[int] = []
    requested, done = asyncio.Event(), asyncio.Event()

    async def receive() -> dict[str, Any]:
        if not requested.is_set():
            requested.set()
            return {"type": "http.request", "body": b"", "more_body": False}
        await done.wait()  # the client stays until the whole body is sent
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])
        elif message["type"] == "http.response.body":
            if message.get("body"):
                parts.append(message["body"])
            if not message.get("more_body"):
                done.set()

    await app(scope, receive, send)
    assert statuses == [200]
    return parts


async def test_json_csv_and_parquet_hold_the_same_bars_in_the_same_columns(stack: Stack) -> None:
    as_json = (await get_bars(stack)).json()
    assert {k: as_json[k] for k in ("source", "symbol", "bar_size", "price_type", "count")} == {
        **SERIES, "price_type": "trades", "count": BARS,
    }  # fmt: skip
    assert [list(bar) for bar in as_json["bars"][:1]] == [COLUMNS]
    expected = [
        (utc(b["ts"]), b["open"], b["high"], b["low"], b["close"], b["volume"], b["adj_close"])
        for b in as_json["bars"]
    ]
    assert len(expected) == BARS
    assert expected[0][0] == datetime(2024, 1, 2, 14, 30, tzinfo=UTC)  # 09:30 New York
    stored = await bar_rows(stack, BarQuery("sim", "AAPL", "1m"))
    assert expected == stored

    response = await get_bars(stack, format="csv")
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"] == (
        'attachment; filename="sim-AAPL-1m-trades.csv"'
    )
    header, *lines = list(csv.reader(io.StringIO(response.text)))
    assert header == COLUMNS
    from_csv = [
        (utc(ts), *map(float, prices), None if adj == "" else float(adj))
        for ts, *prices, adj in lines
    ]
    assert from_csv == expected

    response = await get_bars(stack, format="parquet")
    assert response.headers["content-type"] == "application/vnd.apache.parquet"
    assert response.headers["content-disposition"].endswith('sim-AAPL-1m-trades.parquet"')
    parquet = pq.ParquetFile(io.BytesIO(response.content))
    table = parquet.read()
    assert table.schema.names == COLUMNS
    assert table.schema.field("ts").type == pa.timestamp("us", tz="UTC")
    assert {str(table.schema.field(c).type) for c in COLUMNS[1:]} == {"double"}
    assert parquet.metadata.num_row_groups == -(-BARS // BATCH)  # one per batch
    metadata = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
    assert {k: metadata[f"backfill.{k}"] for k in SERIES} == SERIES
    assert metadata["backfill.price_type"] == "trades"
    assert list(zip(*(table.column(c).to_pylist() for c in COLUMNS), strict=True)) == expected
    frame = table.to_pandas()
    assert list(frame.columns) == COLUMNS
    assert str(frame["ts"].dtype) == "datetime64[us, UTC]"


async def bar_rows(stack: Stack, query: BarQuery) -> list[tuple[Any, ...]]:
    """What the database holds (the one-shot query the console uses), for comparison."""
    async with stack.engine.connect() as conn:
        views = await bars_of(conn, query)
    return [(v.ts, v.open, v.high, v.low, v.close, v.volume, v.adj_close) for v in views]


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("2024-01-02T14:30:00Z", "2024-01-02T14:37:00Z"),  # exactly one batch
        ("2024-01-02T14:30:00Z", "2024-01-02T14:44:00Z"),  # exactly two
        ("2024-01-02T14:31:00Z", "2024-01-03T15:00:00Z"),  # many, the last one short
        ("2024-01-03", "2024-01-04"),
    ],
)
async def test_a_range_over_many_batches_has_every_bar_once_in_order(
    stack: Stack, start: str, end: str
) -> None:
    expected = await bar_rows(stack, BarQuery("sim", "AAPL", "1m", "trades", utc(start), utc(end)))
    assert len(expected) >= BATCH
    got = (await get_bars(stack, start=start, end=end)).json()
    times = [utc(b["ts"]) for b in got["bars"]]
    assert got["count"] == len(got["bars"]) == len(expected)
    assert times == [row[0] for row in expected]  # same order, no duplicate at a boundary
    assert times == sorted(set(times))
    assert times[0] >= utc(start)
    assert times[-1] < utc(end)

    table = pq.read_table(
        io.BytesIO((await get_bars(stack, start=start, end=end, format="parquet")).content)
    )
    assert table.column("ts").to_pylist() == times
    lines = (await get_bars(stack, start=start, end=end, format="csv")).text.splitlines()
    assert [utc(line.split(",")[0]) for line in lines[1:]] == times


async def test_the_response_is_streamed_one_batch_at_a_time(stack: Stack) -> None:
    query = {**SERIES, "start": "2024-01-02", "end": "2024-01-03"}
    parts = await asgi_body_parts(stack, query)
    batches = -(-390 // BATCH)
    assert len(parts) == batches + 2  # the envelope's head, one part per batch, its tail
    assert parts[0].startswith(b'{"source":"sim"')
    assert parts[-1] == b'],"count":390}'
    parquet_parts = await asgi_body_parts(stack, {**query, "format": "parquet"})
    assert len(parquet_parts) == batches + 2  # magic bytes, a row group per batch, the footer
    assert pq.read_table(pa.BufferReader(b"".join(parquet_parts))).num_rows == 390


async def test_an_empty_range_is_a_valid_empty_document(stack: Stack) -> None:
    empty = {"start": "2024-01-06", "end": "2024-01-07"}  # a Saturday
    got = (await get_bars(stack, **empty)).json()
    assert (got["count"], got["bars"]) == (0, [])
    assert (await get_bars(stack, **empty, format="csv")).text == ",".join(COLUMNS) + "\n"
    table = pq.read_table(io.BytesIO((await get_bars(stack, **empty, format="parquet")).content))
    assert (table.num_rows, table.schema.names) == (0, COLUMNS)
    other = (await get_bars(stack, symbol="MSFT")).json()
    assert other["count"] == 0


async def test_the_accept_header_chooses_the_format_when_none_is_asked(stack: Stack) -> None:
    params = {**SERIES, "start": "2024-01-02", "end": "2024-01-03"}
    response = await stack.api.get("/api/v1/bars", params=params, headers={"Accept": "text/csv"})
    assert response.text.startswith("ts,open,")
    parquet = await stack.api.get(
        "/api/v1/bars", params=params, headers={"Accept": "application/vnd.apache.parquet"}
    )
    assert pq.read_table(io.BytesIO(parquet.content)).num_rows == 390
    explicit = await stack.api.get(
        "/api/v1/bars", params={**params, "format": "json"}, headers={"Accept": "text/csv"}
    )
    assert explicit.json()["count"] == 390


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"bar_size": "7m"}, "bar_size"),
        ({"source": "nope"}, "source"),
        ({"symbol": "A" * 33}, "symbol"),
        ({"symbol": "AA\x00PL"}, "symbol"),
        ({"price_type": "Trades;"}, "price_type"),
        ({"format": "xlsx"}, "format"),
        ({"start": "2024-01-03", "end": "2024-01-02"}, "end"),
        ({"start": "yesterday"}, "start"),
    ],
)
async def test_bad_input_is_a_422_that_names_the_field(
    stack: Stack, params: dict[str, str], field: str
) -> None:
    response = await stack.api.get("/api/v1/bars", params={**SERIES, **params})
    assert response.status_code == 422, response.text
    assert [d["loc"][-1] for d in response.json()["detail"]] == [field]
