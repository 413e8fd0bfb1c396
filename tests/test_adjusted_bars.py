"""`GET /bars?adjust=`: bars stored raw, returned split- and dividend-adjusted on request.

The bars and corporate actions come in through the event log (a job's chunk.collected events,
as a worker writes them), the projector folds them, and the real API answers, on SQLite and
PostgreSQL. Every expected number below is worked out by hand from this series:

    day         open  high  low  close  volume   action on that day (its ex-date)
    2024-03-04  100   110   90   100    1000
    2024-03-05  102   112   92   104    1100
    2024-03-06   52    56   46    50    2400    split 2:1 (ratio 2.0)
    2024-03-07   51    55   45    49    2000    dividend 1.00 (previous close 50)
    2024-03-08   50    54   44    52    2100

Split: bars before 03-06 have prices / 2 and volume * 2. Dividend: bars before 03-07 have
prices * (1 - 1.00 / 50) = 0.98. Both apply to 03-04 and 03-05: 0.5 * 0.98 = 0.49.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow.parquet as pq
import pytest

from backfill_client import BackfillClient
from backfill_contracts import (
    BarBatch,
    BarSize,
    ChunkCollected,
    ChunkSpec,
    CorporateAction,
    JobStarted,
    JobSubmitted,
    JobSucceeded,
)
from tests.support.events import append
from tests.support.stack import ADMIN_TOKEN, Stack, running_stack

DAYS = [datetime(2024, 3, d, tzinfo=UTC) for d in (4, 5, 6, 7, 8)]
RAW = [
    (100.0, 110.0, 90.0, 100.0, 1000.0),
    (102.0, 112.0, 92.0, 104.0, 1100.0),
    (52.0, 56.0, 46.0, 50.0, 2400.0),
    (51.0, 55.0, 45.0, 49.0, 2000.0),
    (50.0, 54.0, 44.0, 52.0, 2100.0),
]
SPLITS_ONLY = [
    (50.0, 55.0, 45.0, 50.0, 2000.0),
    (51.0, 56.0, 46.0, 52.0, 2200.0),
    *RAW[2:],
]
ALL = [
    (49.0, 53.9, 44.1, 49.0, 2000.0),
    (49.98, 54.88, 45.08, 50.96, 2200.0),
    (50.96, 54.88, 45.08, 49.0, 2400.0),
    *RAW[3:],
]
DIVIDENDS_ONLY = [  # a source whose prices carry the split already (Yahoo, IBKR)
    (98.0, 107.8, 88.2, 98.0, 1000.0),
    (99.96, 109.76, 90.16, 101.92, 1100.0),
    (50.96, 54.88, 45.08, 49.0, 2400.0),
    *RAW[3:],
]


def job_events(job_id: str, source: str, symbol: str) -> list[Any]:
    common: dict[str, Any] = {"job_id": job_id, "producer": "test"}
    at = datetime(2024, 3, 9, tzinfo=UTC)
    start, end = DAYS[0], DAYS[-1] + timedelta(days=1)
    columns = list(zip(*RAW, strict=True))
    batch = BarBatch(
        ts=[int(d.timestamp()) for d in DAYS],
        open=list(columns[0]),
        high=list(columns[1]),
        low=list(columns[2]),
        close=list(columns[3]),
        volume=list(columns[4]),
    )
    actions = [
        CorporateAction(ts=int(DAYS[2].timestamp()), kind="split", value=2.0),
        CorporateAction(ts=int(DAYS[3].timestamp()), kind="dividend", value=1.0),
    ]
    series: dict[str, Any] = {"source": source, "symbol": symbol, "bar_size": BarSize.D1}
    return [
        JobSubmitted(**common, seq=1, ts=at, **series, start=start, end=end),
        JobStarted(
            **common,
            seq=2,
            ts=at,
            worker_id="w-test",
            price_type="trades",
            chunks=[ChunkSpec(index=0, start=start, end=end)],
        ),
        ChunkCollected(
            **common,
            seq=3,
            ts=at,
            chunk=0,
            **series,
            price_type="trades",
            bars=batch,
            actions=actions,
        ),
        JobSucceeded(**common, seq=4, ts=at, chunks=1, bars=len(DAYS)),
    ]


async def folded(stack: Stack, source: str, symbol: str) -> None:
    job_id = f"adj-{source}-{symbol.lower()}"
    await append(stack.redis, stack.names, job_events(job_id, source, symbol))
    assert (await stack.wait_job(job_id))["status"] == "succeeded"


async def bars(stack: Stack, source: str, symbol: str, **params: Any) -> list[tuple[float, ...]]:
    query = {"source": source, "symbol": symbol, "bar_size": "1d", **params}
    response = await stack.api.get("/api/v1/bars", params=query)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["adjust"] == params.get("adjust", "none")
    return [(b["open"], b["high"], b["low"], b["close"], b["volume"]) for b in body["bars"]]


def approx(rows: Sequence[tuple[float, ...]]) -> Any:
    return [pytest.approx(row, rel=1e-12) for row in rows]


async def test_adjusted_bars_against_a_hand_computed_split_and_dividend(
    redis_url: str, database_url: str, namespace: str
) -> None:
    async with running_stack(redis_url, database_url, namespace, with_worker=False) as stack:
        await folded(stack, "sim", "ADJX")
        assert await bars(stack, "sim", "ADJX") == RAW  # stored raw
        assert await bars(stack, "sim", "ADJX", adjust="none") == RAW
        assert await bars(stack, "sim", "ADJX", adjust="splits") == approx(SPLITS_ONLY)
        assert await bars(stack, "sim", "ADJX", adjust="all") == approx(ALL)
        # A range sees the actions after it: 03-05 and 03-06 alone, adjusted as in the series.
        window = {"start": "2024-03-05", "end": "2024-03-07"}
        ranged = await bars(stack, "sim", "ADJX", adjust="all", **window)
        assert ranged == approx(ALL[1:3])

        # CSV and Parquet carry the same adjusted numbers, and say so in their file name.
        params = {"source": "sim", "symbol": "ADJX", "bar_size": "1d", "adjust": "all"}
        as_csv = await stack.api.get("/api/v1/bars", params={**params, "format": "csv"})
        assert "ADJX-1d-trades-adjusted-all.csv" in as_csv.headers["content-disposition"]
        rows = list(csv.DictReader(io.StringIO(as_csv.text)))
        got = [tuple(float(r[k]) for k in ("open", "high", "low", "close", "volume")) for r in rows]
        assert got == approx(ALL)
        as_parquet = await stack.api.get("/api/v1/bars", params={**params, "format": "parquet"})
        table = pq.read_table(io.BytesIO(as_parquet.content))
        columns = [table.column(k).to_pylist() for k in ("open", "high", "low", "close", "volume")]
        assert list(zip(*columns, strict=True)) == approx(ALL)
        assert (table.schema.metadata or {})[b"backfill.adjust"] == b"all"

        # The Python client asks for the same.
        async with BackfillClient(
            "http://api", token=ADMIN_TOKEN, transport=stack.transport
        ) as client:
            frame = await client.bars("sim", "ADJX", "1d", adjust="all")
            splits = await client.bars("sim", "ADJX", "1d", adjust="splits")
        got = list(frame[["open", "high", "low", "close", "volume"]].itertuples(index=False))
        assert [tuple(map(float, row)) for row in got] == approx(ALL)
        assert list(splits["volume"]) == [2000, 2200, 2400, 2000, 2100]


async def test_split_adjusted_sources_take_only_the_dividends(
    redis_url: str, database_url: str, namespace: str
) -> None:
    async with running_stack(redis_url, database_url, namespace, with_worker=False) as stack:
        await folded(stack, "yahoo", "ADJY")
        assert await bars(stack, "yahoo", "ADJY", adjust="splits") == RAW
        assert await bars(stack, "yahoo", "ADJY", adjust="all") == approx(DIVIDENDS_ONLY)


async def test_adjust_is_checked(redis_url: str, database_url: str, namespace: str) -> None:
    async with running_stack(redis_url, database_url, namespace, with_worker=False) as stack:
        base = {"source": "yahoo", "symbol": "AAPL", "bar_size": "1d"}
        unknown = await stack.api.get("/api/v1/bars", params={**base, "adjust": "dividends"})
        assert unknown.status_code == 422
        twice = await stack.api.get(
            "/api/v1/bars", params={**base, "adjust": "all", "price_type": "adjusted"}
        )
        assert twice.status_code == 422
        assert "adjusted by its source already" in twice.text
