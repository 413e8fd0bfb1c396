"""A job's bars as CSV or Parquet, served by the console (behind its login, see auth.py)."""

from __future__ import annotations

import asyncio
import csv
import io
import re
from urllib.parse import quote

import pyarrow as pa  # pyarrow ships no type hints
import pyarrow.parquet as pq
from fastapi import HTTPException
from nicegui import app
from starlette.responses import Response

from backfill_readmodel import queries
from backfill_readmodel.views import BarView, JobView
from backfill_ui.services import Services

PREFIX = "/downloads"
# The API's canonical columns (GET /api/v1/bars), so both downloads hold the same file.
COLUMNS = ("ts", "open", "high", "low", "close", "volume", "adj_close")


def csv_path(job_id: str) -> str:
    return f"{PREFIX}/{quote(job_id, safe='')}/bars.csv"


def parquet_path(job_id: str) -> str:
    return f"{PREFIX}/{quote(job_id, safe='')}/bars.parquet"


def bar_query(job: JobView) -> queries.BarQuery:
    """The bars a job collected: its range, under the key its source stored them (a future's
    bars are stored under its own instrument, ESH5, not the job's symbol ES)."""
    return queries.BarQuery(
        source=job.source,
        symbol=job.instrument or job.symbol,
        bar_size=job.bar_size,
        price_type=job.price_type or "trades",
        start=job.start,
        end=job.end,
    )


def register(services: Services) -> None:
    @app.get(f"{PREFIX}/{{job_id}}/bars.csv", include_in_schema=False)
    async def job_csv(job_id: str) -> Response:
        job, rows = await _bars(services, job_id)
        return Response(to_csv(rows), media_type="text/csv", headers=_attachment(job, "csv"))

    @app.get(f"{PREFIX}/{{job_id}}/bars.parquet", include_in_schema=False)
    async def job_parquet(job_id: str) -> Response:
        job, rows = await _bars(services, job_id)
        body = await asyncio.to_thread(to_parquet, rows)  # pyarrow work off the event loop
        return Response(
            body, media_type="application/vnd.apache.parquet", headers=_attachment(job, "parquet")
        )


async def _bars(services: Services, job_id: str) -> tuple[JobView, list[BarView]]:
    async with services.connect() as conn:
        job = await queries.get_job(conn, job_id)
        if job is None:
            raise HTTPException(404, f"no job {job_id}")
        return job, await queries.bars_of(conn, bar_query(job))


def to_csv(rows: list[BarView]) -> str:
    """The API's CSV: a header, then one bar per line, `ts` in ISO 8601 UTC."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for bar in rows:
        writer.writerow(
            [bar.ts.isoformat(), bar.open, bar.high, bar.low, bar.close, bar.volume, bar.adj_close]
        )
    return out.getvalue()


def to_parquet(rows: list[BarView]) -> bytes:
    table = pa.table(
        {
            "ts": pa.array([bar.ts for bar in rows], type=pa.timestamp("us", tz="UTC")),
            "open": pa.array([bar.open for bar in rows], type=pa.float64()),
            "high": pa.array([bar.high for bar in rows], type=pa.float64()),
            "low": pa.array([bar.low for bar in rows], type=pa.float64()),
            "close": pa.array([bar.close for bar in rows], type=pa.float64()),
            "volume": pa.array([bar.volume for bar in rows], type=pa.float64()),
            "adj_close": pa.array([bar.adj_close for bar in rows], type=pa.float64()),
        }
    )
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def _attachment(job: JobView, extension: str) -> dict[str, str]:
    name = f"{job.source}-{job.symbol}-{job.bar_size}-{job.start:%Y%m%d}-{job.end:%Y%m%d}"
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", name)
    return {"Content-Disposition": f'attachment; filename="{safe}.{extension}"'}
