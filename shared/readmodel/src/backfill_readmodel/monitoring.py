"""Read queries the console needs beyond what the API serves: live re-reads and monitoring.

They sit beside `queries` (and reuse its row-to-view mapping) so the API could serve them too;
nothing here is a second copy of a query the API already has.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from backfill_readmodel.queries import job_view
from backfill_readmodel.tables import job_events, jobs
from backfill_readmodel.views import JobView

CHUNK_COLLECTED = "chunk.collected"


@dataclass(frozen=True, slots=True)
class TrackedJob:
    """A job as projected, with the seq of the newest event folded into it.

    A page that heard of event `seq` from the log knows the projection has caught up with it
    once `last_seq >= seq`: until then it reads again rather than show a stale row.
    """

    view: JobView
    last_seq: int


async def jobs_by_id(conn: AsyncConnection, job_ids: Iterable[str]) -> dict[str, TrackedJob]:
    """The named jobs that exist, in one query (unknown ids are left out)."""
    wanted = sorted(set(job_ids))
    if not wanted:
        return {}
    rows = (await conn.execute(select(jobs).where(jobs.c.job_id.in_(wanted)))).mappings().all()
    return {row["job_id"]: TrackedJob(job_view(row), row["last_seq"]) for row in rows}


async def bars_collected_since(conn: AsyncConnection, since: datetime) -> int:
    """Bars received from sources since `since`, counted from the chunks' events.

    The bars table has no arrival time (rows are upserted by key), so the log's chunk events
    are the record of what came in: a chunk collected twice (a retried job) counts twice.
    """
    query = select(func.coalesce(func.sum(job_events.c.data["bars"].as_integer()), 0)).where(
        job_events.c.type == CHUNK_COLLECTED, job_events.c.ts >= since
    )
    return int((await conn.execute(query)).scalar_one())


@dataclass(frozen=True, slots=True)
class MinuteThroughput:
    minute: datetime  # the start of the minute, UTC
    chunks: int
    bars: int


async def throughput(
    conn: AsyncConnection, now: datetime, minutes: int = 60
) -> list[MinuteThroughput]:
    """Chunks and bars collected per minute over the last `minutes`, oldest first, gaps as 0.

    Bucketed here rather than in SQL: minute truncation differs between SQLite and PostgreSQL,
    and an hour of chunk events is small.
    """
    end = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    start = end - timedelta(minutes=minutes)
    query = select(job_events.c.ts, job_events.c.data["bars"].as_integer()).where(
        job_events.c.type == CHUNK_COLLECTED, job_events.c.ts >= start, job_events.c.ts < end
    )
    chunks = [0] * minutes
    bars = [0] * minutes
    for ts, count in (await conn.execute(query)).all():
        index = int((ts - start).total_seconds() // 60)
        if 0 <= index < minutes:
            chunks[index] += 1
            bars[index] += int(count or 0)
    return [
        MinuteThroughput(start + timedelta(minutes=i), chunks[i], bars[i]) for i in range(minutes)
    ]
