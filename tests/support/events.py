"""Synthetic event logs with known results: the life of a job as its events, and the rows it
must leave, so tests can append a log and assert exact tables without running a worker."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from backfill_bus import Names, encode, ensure_events_group
from backfill_contracts import (
    BarBatch,
    BarSize,
    ChunkCollected,
    ChunkSpec,
    JobCancelled,
    JobEvent,
    JobFailed,
    JobStarted,
    JobSubmitted,
    JobSucceeded,
    Message,
    Outcome,
    WorkerHeartbeat,
)
from backfill_projector.projector import Projector
from backfill_readmodel import monitoring
from backfill_readmodel.tables import projector_positions
from tests.support.stack import wait_until

Ending = Literal["succeeded", "failed", "cancelled", "running", "queued"]
DAY0 = datetime.fromisoformat("2024-01-01T00:00:00+00:00")


@dataclass
class JobLife:
    """One job's events (in order) and what the projection of them must hold."""

    job_id: str
    events: list[JobEvent] = field(default_factory=list)
    status: str = "queued"
    chunks: int = 0
    bars: int = 0

    @property
    def terminal(self) -> JobEvent | None:
        last = self.events[-1]
        return last if self.status in {"succeeded", "failed", "cancelled"} else None


def job_life(
    job_id: str,
    at: datetime,
    ending: Ending,
    *,
    chunks: int = 3,
    bars_per_chunk: int = 4,
    finished_at: datetime | None = None,
) -> JobLife:
    """A job submitted `at`, that collects `chunks` chunks one second apart and ends as asked.

    Its bars are its own (the symbol is derived from the job id), one minute apart. A failed
    job fails after its chunks; a cancelled one is cancelled while queued.
    """
    symbol = job_id.upper().replace("-", "_")[:32]
    common: dict[str, Any] = {"job_id": job_id, "producer": "test"}
    life = JobLife(job_id)
    life.events.append(
        JobSubmitted(
            **common,
            seq=1,
            ts=at,
            source="sim",
            symbol=symbol,
            bar_size=BarSize.M1,
            start=DAY0,
            end=DAY0 + timedelta(days=chunks),
        )
    )
    if ending in ("queued", "cancelled"):
        if ending == "cancelled":
            end = finished_at or at + timedelta(seconds=1)
            life.events.append(JobCancelled(**common, seq=2, ts=end, reason="not needed"))
        life.status = ending
        return life
    specs = [
        ChunkSpec(index=i, start=DAY0 + timedelta(days=i), end=DAY0 + timedelta(days=i + 1))
        for i in range(chunks)
    ]
    life.events.append(
        JobStarted(
            **common,
            seq=2,
            ts=at + timedelta(seconds=1),
            worker_id="w-test",
            price_type="trades",
            chunks=specs,
        )
    )
    for spec in specs:
        first = int(spec.start.timestamp())
        stamps = [first + 60 * k for k in range(bars_per_chunk)]
        life.events.append(
            ChunkCollected(
                **common,
                seq=3 + spec.index,
                ts=at + timedelta(seconds=2 + spec.index),
                chunk=spec.index,
                source="sim",
                symbol=symbol,
                bar_size=BarSize.M1,
                price_type="trades",
                bars=BarBatch(
                    ts=stamps,
                    open=[1.0] * len(stamps),
                    high=[2.0] * len(stamps),
                    low=[0.5] * len(stamps),
                    close=[1.5] * len(stamps),
                    volume=[100.0] * len(stamps),
                ),
            )
        )
    life.chunks = chunks
    life.bars = chunks * bars_per_chunk
    seq = 3 + chunks
    end = finished_at or at + timedelta(seconds=2 + chunks)
    if ending == "succeeded":
        life.events.append(JobSucceeded(**common, seq=seq, ts=end, chunks=chunks, bars=life.bars))
    elif ending == "failed":
        life.events.append(
            JobFailed(**common, seq=seq, ts=end, outcome=Outcome.GATEWAY_DOWN, message="gone")
        )
    life.status = ending
    return life


def heartbeat(worker_id: str, at: datetime) -> WorkerHeartbeat:
    return WorkerHeartbeat(
        worker_id=worker_id,
        source="sim",
        host="test-host",
        pid=1,
        state="idle",
        started_at=at - timedelta(minutes=1),
        ts=at,
        producer=worker_id,
    )


async def append(redis: Redis, names: Names, events: list[Any]) -> list[str]:
    """XADD each event to the log, in order; their entry ids."""
    ids = []
    for event in events:
        entry_id: Any = await redis.xadd(names.events, encode(event))
        ids.append(entry_id.decode())
    return ids


@contextlib.asynccontextmanager
async def running(projector: Projector) -> AsyncIterator[asyncio.Task[None]]:
    """`projector.run` for the block (its task), stopped after it."""
    stop = asyncio.Event()
    task = asyncio.create_task(projector.run(stop))
    try:
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)


@contextlib.asynccontextmanager
async def running_projector(
    engine: AsyncEngine, redis: Redis, names: Names
) -> AsyncIterator[Projector]:
    """A projector of `names`' log, running for the block."""
    await ensure_events_group(redis, names)
    projector = Projector(engine, redis, names, block_ms=50)
    async with running(projector):
        yield projector


async def position(engine: AsyncEngine, names: Names) -> str | None:
    async with engine.connect() as conn:
        query = select(projector_positions.c.last_id).where(
            projector_positions.c.stream == names.events
        )
        last: str | None = (await conn.execute(query)).scalar_one_or_none()
        return last


async def wait_projected(
    engine: AsyncEngine, names: Names, last_id: str, timeout: float = 30
) -> None:
    async def caught_up() -> bool:
        # At or past it: a worker's heartbeat may move the position on meanwhile.
        at = await position(engine, names)
        return at is not None and _entry(at) >= _entry(last_id)

    await wait_until(caught_up, timeout, f"projector position at {last_id}")


async def wait_folded(engine: AsyncEngine, job_id: str, seq: int, within: float = 20) -> None:
    """Until the projector has folded the job's event `seq` (its position cannot be compared
    to one entry id: the running workers' heartbeats keep moving it past)."""

    async def folded() -> bool:
        async with engine.connect() as conn:
            found = await monitoring.jobs_by_id(conn, [job_id])
        return job_id in found and found[job_id].last_seq >= seq

    await wait_until(folded, within, f"job {job_id} folded up to seq {seq}")


async def count(engine: AsyncEngine, table: Any) -> int:
    async with engine.connect() as conn:
        total: int = (await conn.execute(select(func.count()).select_from(table))).scalar_one()
        return total


def all_events(*lives: JobLife | Message) -> list[Any]:
    events: list[Any] = []
    for item in lives:
        events.extend(item.events if isinstance(item, JobLife) else [item])
    return events


def _entry(entry_id: str) -> tuple[int, int]:
    ms, seq = entry_id.split("-")
    return int(ms), int(seq)
