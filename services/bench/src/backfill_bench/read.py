"""A6 read: `GET /api/v1/bars` for one symbol-year of 1-minute bars in a big table.

The bars (`bar_rows`, one series per symbol) are first filled with COPY to `read_table_rows`
rows (a symbol-year each: 252 sessions of 390 bars = 98,280 rows), then vacuumed and analyzed,
as a table in service would be. Each run asks for the target symbol's year `read_requests`
times as JSON and as Parquet, timing each request from sending it to its body's last byte
(perf_counter), and checks the row count in every answer.
"""

from __future__ import annotations

import io
import json
import time
from datetime import date

import asyncpg
import httpx
import pyarrow.parquet as pq

from backfill_bench import synthetic
from backfill_bench.context import Context
from backfill_bench.jobs import BenchError
from backfill_bench.results import Metric, Run, Target, Workload
from backfill_bench.stats import percentile

TARGET = "READTARGET"
TARGET_FIRST_DAY = date(2023, 1, 2)  # a Monday; 252 sessions end in December
YEAR_ROWS = synthetic.SESSIONS_PER_YEAR * synthetic.BARS_PER_SESSION
LOAD_BATCH = 100_000
FORMATS = ("json", "parquet")
_ADD_SERIES = """
INSERT INTO series (source, symbol, bar_size, price_type)
SELECT 'sim', symbol, '1m', 'trades' FROM unnest($1::text[]) AS symbol
RETURNING id, symbol
"""


def workload(note: str) -> Workload:
    return Workload(
        "A6",
        "read one symbol-year (GET /bars)",
        f"{note}; request sent -> last byte received, rows counted",
        [
            Metric("json_p50_ms", "JSON p50 ms", Target("<=", 300)),
            Metric("parquet_p50_ms", "Parquet p50 ms", Target("<=", 300)),
        ],
    )


async def load(ctx: Context) -> dict[str, float]:
    """Fill the bars table to the size asked (the target's year included); returns timings."""
    conn = await asyncpg.connect(ctx.stack.dsn)
    try:
        began = time.perf_counter()
        filler = max(0, ctx.sizes.read_table_rows - YEAR_ROWS)
        symbols = [TARGET] + [f"FILL{n:04d}" for n in range(synthetic.series_for(filler))]
        ids = await conn.fetch(_ADD_SERIES, symbols)
        series_id = {row["symbol"]: row["id"] for row in ids}
        target = synthetic.rows(
            series_id[TARGET],
            synthetic.session_stamps(TARGET_FIRST_DAY, synthetic.SESSIONS_PER_YEAR),
        )
        columns = synthetic.BAR_COLUMNS
        await conn.copy_records_to_table("bar_rows", records=target, columns=columns)
        fillers = [series_id[symbol] for symbol in symbols[1:]]
        for batch in synthetic.batches(fillers, filler, LOAD_BATCH):
            await conn.copy_records_to_table("bar_rows", records=batch, columns=columns)
        loaded = time.perf_counter() - began
        await conn.execute("VACUUM (ANALYZE) bar_rows")
        await conn.execute("VACUUM (ANALYZE) series")
        total = await conn.fetchval("SELECT count(*) FROM bar_rows")
    finally:
        await conn.close()
    return {"load_s": loaded, "vacuum_s": time.perf_counter() - began - loaded, "rows": total}


async def run(ctx: Context, number: int) -> Run:
    params = {
        "source": "sim",
        "symbol": TARGET,
        "bar_size": "1m",
        "start": "2023-01-01T00:00:00Z",
        "end": "2024-01-01T00:00:00Z",
    }
    samples: dict[str, list[float]] = {name: [] for name in FORMATS}
    headers = {"Authorization": f"Bearer {ctx.stack.api_token}"}
    async with httpx.AsyncClient(base_url=ctx.stack.api_url, headers=headers, timeout=120) as http:
        for _ in range(ctx.sizes.read_requests):
            for name in FORMATS:
                began = time.perf_counter()
                response = await http.get("/api/v1/bars", params={**params, "format": name})
                elapsed = time.perf_counter() - began
                if response.status_code != 200:
                    raise BenchError(f"GET /bars ({name}) answered {response.status_code}")
                rows = _rows(name, response.content)
                if rows != YEAR_ROWS:
                    raise BenchError(f"GET /bars ({name}) gave {rows} rows, not {YEAR_ROWS}")
                samples[name].append(elapsed * 1000)
    figures = {f"{name}_p50_ms": percentile(samples[name], 50) for name in FORMATS}
    sizes = {"rows_per_answer": YEAR_ROWS}
    return Run(figures, {f"{name}_ms": samples[name] for name in FORMATS}, sizes)


def _rows(name: str, body: bytes) -> int:
    if name == "json":
        return int(json.loads(body)["count"])
    return int(pq.read_table(io.BytesIO(body)).num_rows)
