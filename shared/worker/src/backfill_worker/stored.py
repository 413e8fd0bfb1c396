"""What is stored already: the plan keeps only the chunks a job's mode asks to fetch.

Workers otherwise only consume commands and publish events; this is the one place they read
the projections, through the read-model library. Why here and not in the API: a command
published with a plain XADD (`"mode": "fill_gaps"`) must work without the API, and the series a
job fills is known for sure only once its source has planned it (the price type, a future's
local symbol). The API and the console show the same coverage from the same queries.

- `full`: the source's plan, less the chunks whose window was collected already for the same
  series (an identical chunk is not fetched again) or whose expected bars are all stored.
- `fill_gaps`: only chunks holding missing bars of the range (never requested or failed; with
  `force`, also those the source answered with nothing), each cut down to its missing part.
- `top_up`: the same, from just after the series' last stored bar.
- `force` with `full`: the whole plan, as before modes existed.

The chosen chunks are pinned in Redis under the job on first planning, so a redelivered,
reclaimed or retried job resumes against the same chunk list (checkpoints name chunks by index
and window) even after its first chunks have been projected. The projections may lag the log
by a moment: a chunk collected but not yet projected may be fetched again, and its bars are
upserted on their natural key, so that costs a request, never a duplicate.
"""

from __future__ import annotations

import asyncio
import json
import logging
from bisect import bisect_left
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import cache
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import Select, bindparam, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from backfill_bus import Names
from backfill_bus.event_log import JOB_KEY_TTL_S, Pin, PinRefused
from backfill_contracts import ChunkSpec, CollectBars, JobMode, Outcome
from backfill_readmodel.coverage import GapKind, RangeTooLargeError, Series, calendar_for, held
from backfill_readmodel.coverage.store import (
    Measured,
    anything_known,
    chunk_windows,
    known_params,
    measure,
)
from backfill_readmodel.direct import DirectReadError, DirectReads
from backfill_readmodel.tables import jobs
from backfill_worker.source import NamesSeries, Plan, SourceError

log = logging.getLogger(__name__)
_ANSWERED = (GapKind.PARTIAL, GapKind.NO_DATA)
_FILLABLE = frozenset({GapKind.NEVER_REQUESTED, GapKind.FAILED})


class StoredData:
    """Reads the projections (None: this worker has no database, so only `full` runs)."""

    def __init__(self, engine: AsyncEngine | None, redis: Redis, names: Names) -> None:
        self.engine = engine
        self.redis = redis
        self.names = names
        self.direct = DirectReads.of(engine)  # the look before each job, on PostgreSQL

    async def close(self) -> None:
        if self.direct is not None:
            await self.direct.close()

    def look_ahead(self, job: CollectBars, source: object) -> Ahead | None:
        """Start asking whether a `full` job's whole plan stands (see _whole_plan_stands), for
        a source that names the job's series without planning (see NamesSeries), so that the
        question runs while the worker takes the job; pass the answer to `narrowed`.

        A read only: an answer nobody uses (the job was cancelled, or is under way) is dropped.
        """
        if job.mode is not JobMode.FULL or job.force or self.engine is None:
            return None
        if not isinstance(source, NamesSeries) or (named := source.series_of(job)) is None:
            return None
        series = Series(job.source, named[0], job.bar_size, named[1])
        task = asyncio.create_task(self._whole_plan_stands(job, series), name="stored-ahead")
        task.add_done_callback(_drop_unread)
        return Ahead(series, task)

    async def _whole_plan_stands(self, job: CollectBars, series: Series) -> bool:
        assert self.engine is not None
        if self.direct is not None:
            row = await self.direct.fetchrow(_whole_plan_query(), _whole_plan_params(job, series))
            return _plan_stands(*row)
        async with self.engine.connect() as conn:
            # One statement: no transaction to begin and roll back, two round trips fewer.
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            return await _whole_plan_stands(conn, job, series)

    async def narrowed(self, job: CollectBars, plan: Plan, ahead: Ahead | None = None) -> Narrowed:
        """`plan` with only the chunks to fetch, pinned for the job's later deliveries.

        `ahead`: from `look_ahead`, used when the plan is for the series it asked about.
        """
        if job.mode is JobMode.FULL and (job.force or self.engine is None):
            return Narrowed(plan)  # the whole plan: nothing to pin beyond what the source plans
        key = self.names.job_key(job.job_id, "plan")
        done_key = self.names.job_key(job.job_id, "chunks_done")  # see Narrowed
        if await self._stands_whole(job, plan, ahead):
            # The common case, a range nobody collected: whatever a pin or checkpoints say, the
            # plan to pin is the whole plan, so pinning it needs no look first. The pin is set
            # with the start event, which goes out only if it holds and no chunk is done: else
            # the runner resumes from what Redis holds (`resumed`). No round trip of its own.
            pin = _pin_of(plan.chunks)
            return Narrowed(_narrowed_to(plan, pin), {}, Pin(key, pin, done_key))
        async with self.redis.pipeline(transaction=False) as pipe:  # one round trip
            pipe.get(key)
            pipe.hgetall(done_key)
            pinned, checkpoints = await pipe.execute()
        underway = bool(checkpoints)
        if pinned is None:
            # Under way already, planned by a worker that pinned nothing (one without a
            # database, or an older version): its plan stands, so that it resumes as it was.
            chunks = plan.chunks if underway else await self._choose(job, plan, ahead)
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.set(key, _pin_of(chunks), nx=True, ex=JOB_KEY_TTL_S)
                pipe.get(key)  # another delivery may have pinned first
                _, pinned = await pipe.execute()
        return Narrowed(_narrowed_to(plan, pinned), checkpoints)

    @staticmethod
    def resumed(narrowed: Narrowed, refused: PinRefused) -> Narrowed:
        """What a job resumes when its `Narrowed.pin` did not hold: the chunks an earlier
        delivery of it pinned, with the checkpoints of those it collected."""
        assert narrowed.pin is not None, "only a plan with a pin is refused"
        # Unset: the key was gone again at once (see PinRefused); this plan is as good as any.
        pinned = refused.pinned if refused.pinned is not None else narrowed.pin.value
        return Narrowed(_narrowed_to(narrowed.plan, pinned), refused.done)

    async def _stands_whole(self, job: CollectBars, plan: Plan, ahead: Ahead | None) -> bool:
        """Whether the look-ahead found that this full job's whole plan stands (see look_ahead).

        A look that failed counts as yes: skipping stored chunks saves requests, and is never
        worth failing a job over.
        """
        if job.mode is not JobMode.FULL or ahead is None or not ahead.asked_about(job, plan):
            return False
        try:
            return await ahead.answer()
        except SourceError as error:
            log.warning("fetching every chunk of job %s: %s", job.job_id, error.message)
            return True

    async def without_planning(self, job: CollectBars, source: object) -> Plan | None:
        """An empty plan, pinned, when a fill_gaps or top_up job has nothing to fetch and its
        source names the series without a request (see NamesSeries): the source is then not
        asked anything at all, not even to plan. None: plan as usual."""
        if job.mode is JobMode.FULL or self.engine is None or not isinstance(source, NamesSeries):
            return None
        named = source.series_of(job)
        if named is None:
            return None
        key = self.names.job_key(job.job_id, "plan")
        if await self.redis.exists(key, self.names.job_key(job.job_id, "chunks_done")):
            return None  # under way: it resumes its own plan
        instrument, price_type = named
        reading = await self._read(job, Series(job.source, instrument, job.bar_size, price_type))
        if reading is None or reading.wanted(job.force):
            return None
        await self.redis.set(key, "[]", nx=True, ex=JOB_KEY_TTL_S)
        if await self.redis.get(key) not in (b"[]", "[]"):
            return None  # another delivery pinned a plan first: follow it
        return Plan(price_type, [], None if instrument == job.symbol else instrument)

    async def _choose(self, job: CollectBars, plan: Plan, ahead: Ahead | None) -> list[ChunkSpec]:
        series = _series_of(job, plan)
        asked = ahead is not None and ahead.series == series
        try:
            if asked and ahead is not None and await ahead.answer():
                return plan.chunks
            reading = await self._read(job, series, asked=asked)
        except SourceError as error:
            if job.mode is not JobMode.FULL:
                raise
            # Skipping stored chunks saves requests; it is never worth failing a job over.
            log.warning("fetching every chunk of job %s: %s", job.job_id, error.message)
            return plan.chunks
        if reading is None:
            return plan.chunks
        if job.mode is JobMode.FULL:
            return [c for c in plan.chunks if not _stored(c, reading.answered, reading.measured)]
        if reading.measured is None:
            return []
        wanted = reading.wanted(job.force)
        return _cut_to(plan.chunks, wanted, reading.measured, reading.lo, reading.hi)

    async def _read(self, job: CollectBars, series: Series, asked: bool = False) -> _Reading | None:
        """What is stored for the series over the part of the job's range its mode covers.

        None: a `full` job whose plan stands whole (see _whole_plan_stands), found in one
        round trip, so the common case (a range nobody collected yet) costs one query.
        `asked`: that question was answered already (no).
        """
        if self.engine is None:
            raise SourceError(
                Outcome.INVALID_REQUEST,
                f"mode {job.mode.value} needs to know what is stored, and this worker has no "
                "database (set BACKFILL_DATABASE_URL to the projections' database)",
            )
        lo, hi = int(job.start.timestamp()), int(job.end.timestamp())
        try:
            async with self.engine.connect() as conn:
                full = job.mode is JobMode.FULL
                if full and not asked and await _whole_plan_stands(conn, job, series):
                    return None
                if job.mode is JobMode.TOP_UP:
                    last = (await held(conn, series)).last
                    if last is not None:
                        lo = max(lo, int(last.timestamp()) + 1)
                if lo >= hi:
                    return _Reading(lo, hi, [], None)
                windows = await chunk_windows(conn, series, lo, hi)
                answered = [(w.start, w.end) for w in windows if w.kind in _ANSWERED]
                try:
                    calendar = calendar_for(job.source)
                    measured = await measure(conn, series, calendar, lo, hi, windows)
                except RangeTooLargeError as error:
                    if job.mode is not JobMode.FULL:
                        raise SourceError(Outcome.INVALID_REQUEST, str(error)) from error
                    measured = None
        except SQLAlchemyError as error:
            raise SourceError(
                Outcome.INTERNAL_ERROR, f"cannot read what is stored already: {error}"
            ) from error
        return _Reading(lo, hi, answered, measured)


@dataclass(frozen=True, slots=True)
class Narrowed:
    """A narrowed plan, and the job's checkpoints as read with its pin (None: not read).

    The job is this worker's by then (taken), so nothing marks a checkpoint in between: the
    runner resumes from these without reading them again, one round trip fewer per job.
    `pin`: not pinned yet; the plan and the checkpoints (none) hold only if this pin holds
    when it is set with the job's start event (see backfill_bus.event_log.Pin).
    """

    plan: Plan
    checkpoints: dict[bytes, bytes] | None = None
    pin: Pin | None = None


@dataclass(frozen=True, slots=True)
class Ahead:
    """Whether a full job's whole plan stands, asked ahead for a series (see look_ahead)."""

    series: Series
    task: asyncio.Task[bool]

    def asked_about(self, job: CollectBars, plan: Plan) -> bool:
        return self.series == _series_of(job, plan)

    async def answer(self) -> bool:
        try:
            return await self.task
        except (SQLAlchemyError, DirectReadError) as error:
            raise SourceError(
                Outcome.INTERNAL_ERROR, f"cannot read what is stored already: {error}"
            ) from error


def _series_of(job: CollectBars, plan: Plan) -> Series:
    return Series(job.source, plan.instrument or job.symbol, job.bar_size, plan.price_type)


def _pin_of(chunks: list[ChunkSpec]) -> str:
    return json.dumps([[int(c.start.timestamp()), int(c.end.timestamp())] for c in chunks])


def _narrowed_to(plan: Plan, pinned: bytes | str) -> Plan:
    """The plan cut down to the pinned chunk windows."""
    windows = json.loads(pinned)
    kept = [ChunkSpec(index=i, start=_at(lo), end=_at(hi)) for i, (lo, hi) in enumerate(windows)]
    return replace(plan, chunks=kept, skipped=max(0, len(plan.chunks) - len(kept)))


def _drop_unread(task: asyncio.Task[bool]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.debug("an unused look at what is stored failed", exc_info=task.exception())


async def _whole_plan_stands(conn: AsyncConnection, job: CollectBars, series: Series) -> bool:
    """Whether a `full` job fetches its whole plan, without measuring what is stored.

    It does when the read model knows the job started already: Redis lost its pin and
    checkpoints (a restart without its last second of AOF), and its own chunks, stored by now,
    must not be skipped as someone else's. It does too when no bar and no job's chunk could
    count toward its range: then no chunk of it is stored.
    """
    params = _whole_plan_params(job, series)
    return _plan_stands(*(await conn.execute(_whole_plan_query(), params)).one())


def _whole_plan_params(job: CollectBars, series: Series) -> dict[str, Any]:
    lo, hi = int(job.start.timestamp()), int(job.end.timestamp())
    return {"job_id": job.job_id, **known_params(series, lo, hi)}


def _plan_stands(started_before: bool | None, known: bool | None) -> bool:
    return bool(started_before) or not known


@cache
def _whole_plan_query() -> Select[bool, bool]:
    """Built once: building the statement cost more than PostgreSQL's answer to it."""
    started = select(jobs.c.started_at).where(jobs.c.job_id == bindparam("job_id"))
    return select(started.scalar_subquery().is_not(None), anything_known())


@dataclass(frozen=True, slots=True)
class _Reading:
    """What is stored for a job's series over the part of its range its mode covers."""

    lo: int
    hi: int
    answered: list[tuple[int, int]]  # windows the source answered already
    measured: Measured | None  # None: nothing to measure, or (mode full) too large to

    def wanted(self, force: bool) -> list[tuple[int, int]]:
        """The gaps a fill_gaps or top_up job fetches."""
        if self.measured is None:
            return []
        return [(g.start, g.end) for g in self.measured.gaps if force or g.kind in _FILLABLE]


def _stored(chunk: ChunkSpec, answered: list[tuple[int, int]], measured: Measured | None) -> bool:
    """Whether the chunk's window was answered already, or holds every bar it should."""
    lo, hi = int(chunk.start.timestamp()), int(chunk.end.timestamp())
    if _covered(lo, hi, answered):
        return True
    if measured is None:
        return False
    first = bisect_left(measured.slots.starts, lo)
    last = bisect_left(measured.slots.starts, hi)
    return last > first and all(measured.held[first:last])


def _covered(lo: int, hi: int, windows: list[tuple[int, int]]) -> bool:
    reach = lo
    for start, end in sorted(windows):
        if start > reach:
            break
        reach = max(reach, end)
        if reach >= hi:
            return True
    return reach >= hi


def _cut_to(
    chunks: list[ChunkSpec], wanted: list[tuple[int, int]], measured: Measured, lo: int, hi: int
) -> list[ChunkSpec]:
    """Each chunk holding wanted time: whole when every bar it should hold is wanted (so it
    stays identical to the chunk a `full` job plans), else cut from its first to its last
    wanted bar."""
    starts, ends = measured.slots.starts, measured.slots.ends
    kept: list[ChunkSpec] = []
    for chunk in chunks:
        start = max(lo, int(chunk.start.timestamp()))
        end = min(hi, int(chunk.end.timestamp()))
        parts = [(max(start, s), min(end, e)) for s, e in wanted if s < end and e > start]
        if not parts:
            continue
        first, last = min(p[0] for p in parts), max(p[1] for p in parts)
        inside = range(bisect_left(starts, start), bisect_left(starts, end))
        if inside and first <= starts[inside[0]] and last >= ends[inside[-1]]:
            first, last = start, end
        kept.append(ChunkSpec(index=len(kept), start=_at(first), end=_at(last)))
    return kept


def _at(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, UTC)
