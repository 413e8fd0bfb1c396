"""The one query layer over the projections, shared by the API and the console."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from backfill_contracts import BarRequest
from backfill_readmodel.tables import (
    bar_rows,
    job_chunks,
    job_events,
    jobs,
    series_id_of,
    workers,
)
from backfill_readmodel.views import (
    BarView,
    ChunkView,
    JobError,
    JobEventView,
    JobPage,
    JobView,
    Progress,
    RunTotals,
    Stats,
    WorkerView,
)

ACTIVE_STATUSES = ("queued", "running", "retrying")
TERMINAL_STATUSES = ("succeeded", "failed", "cancelled")


class InvalidCursorError(ValueError):
    """Raised when a list cursor was not produced by list_jobs (tampered or truncated)."""


@dataclass(frozen=True, slots=True)
class JobFilter:
    status: str | None = None
    source: str | None = None
    symbol: str | None = None
    submitted_from: datetime | None = None  # inclusive
    submitted_before: datetime | None = None  # exclusive


def job_view(row: Mapping[Any, Any]) -> JobView:
    total, done = row["chunks_total"], row["chunks_done"]
    if total:
        percent = round(100.0 * done / total, 2)
    else:
        percent = 100.0 if row["status"] == "succeeded" else 0.0
    error = None
    if row["error_outcome"] or row["error_message"]:
        error = JobError(outcome=row["error_outcome"], message=row["error_message"])
    return JobView(
        **{name: row[name] for name in JobView.model_fields if name in row},
        progress=Progress(
            chunks_done=done, chunks_total=total, bars_stored=row["bars_stored"], percent=percent
        ),
        error=error,
    )


async def get_job(conn: AsyncConnection, job_id: str) -> JobView | None:
    row = (await conn.execute(select(jobs).where(jobs.c.job_id == job_id))).mappings().first()
    return None if row is None else job_view(row)


def _encode_cursor(submitted_at: datetime, job_id: str) -> str:
    return base64.urlsafe_b64encode(f"{submitted_at.isoformat()}|{job_id}".encode()).decode()


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        stamp, job_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|", 1)
        submitted_at = datetime.fromisoformat(stamp)
    except ValueError as error:
        raise InvalidCursorError("cursor is not one this API returned") from error
    if submitted_at.tzinfo is None:  # every cursor we hand out carries its zone
        raise InvalidCursorError("cursor is not one this API returned")
    return submitted_at, job_id


async def list_jobs(
    conn: AsyncConnection,
    filters: JobFilter,
    limit: int = 50,
    cursor: str | None = None,
    statuses: Sequence[str] | None = None,
) -> JobPage:
    """Newest first, paged by an opaque keyset cursor (stable while new jobs arrive)."""
    query: Select[Any] = select(jobs)
    conditions: list[ColumnElement[bool]] = []
    if filters.status:
        conditions.append(jobs.c.status == filters.status)
    if statuses:
        conditions.append(jobs.c.status.in_(statuses))
    if filters.source:
        conditions.append(jobs.c.source == filters.source)
    if filters.symbol:
        conditions.append(jobs.c.symbol == filters.symbol)
    if filters.submitted_from is not None:
        conditions.append(jobs.c.submitted_at >= filters.submitted_from)
    if filters.submitted_before is not None:
        conditions.append(jobs.c.submitted_at < filters.submitted_before)
    if cursor:
        submitted_at, job_id = _decode_cursor(cursor)
        conditions.append(tuple_(jobs.c.submitted_at, jobs.c.job_id) < (submitted_at, job_id))
    query = query.where(*conditions).order_by(jobs.c.submitted_at.desc(), jobs.c.job_id.desc())
    rows = (await conn.execute(query.limit(limit + 1))).mappings().all()
    views = [job_view(row) for row in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = views[-1]
        next_cursor = _encode_cursor(last.submitted_at, last.job_id)
    return JobPage(jobs=views, next_cursor=next_cursor)


async def job_events_of(conn: AsyncConnection, job_id: str) -> list[JobEventView]:
    query = (
        select(job_events)
        .where(job_events.c.job_id == job_id)
        .order_by(job_events.c.seq, job_events.c.event_id)
    )
    return [JobEventView(**row) for row in (await conn.execute(query)).mappings()]


async def job_chunks_of(conn: AsyncConnection, job_id: str) -> list[ChunkView]:
    query = select(job_chunks).where(job_chunks.c.job_id == job_id).order_by(job_chunks.c.chunk)
    return [ChunkView(**row) for row in (await conn.execute(query)).mappings()]


@dataclass(frozen=True, slots=True)
class BarQuery:
    source: str
    symbol: str
    bar_size: str
    price_type: str = "trades"
    start: datetime | None = None
    end: datetime | None = None


def bars_select(q: BarQuery) -> Select[Any]:
    query = select(
        bar_rows.c.ts,
        bar_rows.c.open,
        bar_rows.c.high,
        bar_rows.c.low,
        bar_rows.c.close,
        bar_rows.c.volume,
        bar_rows.c.adj_close,
    ).where(bar_rows.c.series_id == series_id_of(q.source, q.symbol, q.bar_size, q.price_type))
    if q.start is not None:
        query = query.where(bar_rows.c.ts >= q.start)
    if q.end is not None:
        query = query.where(bar_rows.c.ts < q.end)
    return query.order_by(bar_rows.c.ts)


async def bars_of(conn: AsyncConnection, q: BarQuery) -> list[BarView]:
    return [BarView(**row) for row in (await conn.execute(bars_select(q))).mappings()]


def _duration_seconds(conn: AsyncConnection) -> ColumnElement[Any]:
    if conn.dialect.name == "sqlite":
        return (func.julianday(jobs.c.finished_at) - func.julianday(jobs.c.started_at)) * 86400.0
    return func.extract("epoch", jobs.c.finished_at - jobs.c.started_at)


async def job_counts(conn: AsyncConnection) -> list[tuple[str, str, int]]:
    """(source, status, jobs) for every pair that has jobs: one GROUP BY on the jobs table."""
    query = select(jobs.c.source, jobs.c.status, func.count()).group_by(
        jobs.c.source, jobs.c.status
    )
    return [(source, status, int(count)) for source, status, count in await conn.execute(query)]


async def stats(conn: AsyncConnection) -> Stats:
    """Success rate counts succeeded against failed; cancelled jobs were a user's choice."""
    by_status: dict[str, int] = {}
    by_source: dict[str, dict[str, int]] = {}
    for source, status, count in await job_counts(conn):
        by_status[status] = by_status.get(status, 0) + count
        by_source.setdefault(source, {})[status] = count
    succeeded, failed = by_status.get("succeeded", 0), by_status.get("failed", 0)
    mean = (
        await conn.execute(
            select(func.avg(_duration_seconds(conn))).where(
                jobs.c.status == "succeeded", jobs.c.started_at.is_not(None)
            )
        )
    ).scalar_one_or_none()
    bars_stored = (await conn.execute(select(func.count()).select_from(bar_rows))).scalar_one()
    return Stats(
        jobs_total=sum(by_status.values()),
        by_status=by_status,
        by_source=by_source,
        success_rate=round(succeeded / (succeeded + failed), 4) if succeeded + failed else None,
        mean_duration_s=None if mean is None else round(float(mean), 3),
        bars_stored=int(bars_stored),
    )


async def submitted_request(conn: AsyncConnection, job_id: str) -> dict[str, Any] | None:
    """What the job's latest submission asked for (its parameters and time limit)."""
    query = (
        select(job_events.c.data)
        .where(job_events.c.job_id == job_id, job_events.c.type == "job.submitted")
        .order_by(job_events.c.seq.desc())
        .limit(1)
    )
    data = (await conn.execute(query)).scalar_one_or_none()
    return None if data is None else dict(data)


async def retry_request(conn: AsyncConnection, job: JobView) -> BarRequest:
    """The request a retry of `job` runs again: its parameters, with its own time limit."""
    submitted = await submitted_request(conn, job.job_id) or {}
    return BarRequest(
        source=job.source,
        symbol=job.symbol,
        bar_size=job.bar_size,
        start=job.start,
        end=job.end,
        options=job.options,
        time_limit_s=submitted.get("time_limit_s"),
        # A fill_gaps or top_up job stays one: its worker pinned what it plans to fetch.
        mode=submitted.get("mode", "full"),
        force=submitted.get("force", False),
    )


async def list_workers(
    conn: AsyncConnection, now: datetime, dead_after_s: float, source: str | None = None
) -> list[WorkerView]:
    """Workers by last heartbeat, newest first; alive = heard from within `dead_after_s`."""
    query = select(workers).order_by(workers.c.last_heartbeat.desc())
    if source is not None:
        query = query.where(workers.c.source == source)
    return [
        WorkerView(
            **row,
            alive=row["state"] != "stopped"
            and (now - row["last_heartbeat"]).total_seconds() <= dead_after_s,
        )
        for row in (await conn.execute(query)).mappings()
    ]


async def waiting_notice(
    conn: AsyncConnection, job: JobView, now: datetime, dead_after_s: float
) -> str | None:
    """For a queued job whose source has no live worker: say so, and since when."""
    if job.status != "queued":
        return None
    found = await list_workers(conn, now, dead_after_s, source=job.source)
    if any(worker.alive for worker in found):
        return None
    if not found:
        return f"no {job.source} worker has been online yet; the job waits for one"
    last = max(worker.last_heartbeat for worker in found)
    return f"no {job.source} worker online since {last.isoformat()}; the job waits for one"


async def add_waiting_notices(
    conn: AsyncConnection, page: JobPage, now: datetime, dead_after_s: float
) -> JobPage:
    """Queued jobs whose source has no live worker say so, instead of waiting silently
    (one look at the workers per source on the page)."""
    notices: dict[str, str | None] = {}
    for job in page.jobs:
        if job.status == "queued":
            if job.source not in notices:
                notices[job.source] = await waiting_notice(conn, job, now, dead_after_s)
            job.notice = notices[job.source]
    return page


async def universe_run_jobs(conn: AsyncConnection, universe: str, run_id: str) -> list[JobView]:
    """The projected jobs of one run of a universe, by symbol and bar size."""
    query = (
        select(jobs)
        .where(jobs.c.universe == universe, jobs.c.universe_run == run_id)
        .order_by(jobs.c.symbol, jobs.c.bar_size, jobs.c.job_id)
    )
    return [job_view(row) for row in (await conn.execute(query)).mappings()]


def run_totals(job_ids: Sequence[str], views: Sequence[JobView]) -> RunTotals:
    """The totals of a run that submitted `job_ids`, of which `views` are projected so far."""
    by_status: dict[str, int] = {}
    for view in views:
        by_status[view.status] = by_status.get(view.status, 0) + 1
    unseen = len(set(job_ids) - {v.job_id for v in views})
    if unseen:
        by_status["queued"] = by_status.get("queued", 0) + unseen
    total = len(job_ids)
    ended = sum(by_status.get(s, 0) for s in TERMINAL_STATUSES)
    percents = [100.0 if v.status in TERMINAL_STATUSES else v.progress.percent for v in views]
    return RunTotals(
        jobs_total=total,
        by_status=by_status,
        finished=total > 0 and ended == total,
        bars_stored=sum(v.progress.bars_stored for v in views),
        chunks_done=sum(v.progress.chunks_done for v in views),
        chunks_total=sum(v.progress.chunks_total for v in views),
        percent=round(sum(percents) / total, 2) if total else 100.0,
    )
