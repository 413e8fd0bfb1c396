"""Universes: named lists of instruments with shared settings, and the runs that fan them out.

A universe is configuration, not history, so it lives in Redis beside the webhook subscriptions
and API tokens, not in the read model: the read model is a pure function of the event log and
the projector is its only writer, while a universe is edited in place by the API and the console
and must be the same for every replica at once. One hash holds the universes (name -> JSON);
one hash per universe holds its runs (run id -> JSON: when, and the job of every series).

A run submits one job per (symbol, bar size). Each job's idempotency key is derived from the
universe, the run and the series, so submitting the same run again (a retried request, a double
click, two API replicas) finds the jobs it made and makes none twice. The jobs carry the
universe and run on their command and submitted event, and the read model keeps them in its
jobs table, which is where a run's progress is counted.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator
from redis.asyncio import Redis

from backfill_bus.commands import CommandBus
from backfill_bus.names import Names
from backfill_contracts import BarRequest, BarSize, JobMode, as_utc

NAME_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
RUN_ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"
MAX_SERIES = 2000  # symbols x bar sizes of one universe: one job each per run
_NAME = re.compile(NAME_PATTERN)


class Universe(BaseModel):
    """Symbols that share a source, bar sizes, a range and options."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "megacaps",
                    "source": "sim",
                    "symbols": ["AAPL", "MSFT", "NVDA"],
                    "bar_sizes": ["1d", "1h"],
                    "start": "2024-01-01",
                    "end": "2024-04-01",
                    "options": {},
                }
            ]
        },
    )

    name: str = Field(pattern=NAME_PATTERN, description="1 to 64 of A-Z a-z 0-9 _ . -")
    source: str
    symbols: list[str] = Field(min_length=1)
    bar_sizes: list[BarSize] = Field(min_length=1)
    start: datetime = Field(description="inclusive; a date or naive time is UTC")
    end: datetime | None = Field(
        default=None,
        description="exclusive; a date or naive time is UTC. Left out: open, each run collects "
        "up to the moment it is submitted (a schedule's tick), which keeps the data current",
    )
    options: dict[str, Any] = Field(default_factory=dict)
    time_limit_s: float | None = Field(default=None, gt=0)
    description: str | None = Field(default=None, max_length=500)

    @field_validator("start", "end")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return None if value is None else as_utc(value)

    @field_validator("symbols")
    @classmethod
    def _once_each(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))

    @field_validator("bar_sizes")
    @classmethod
    def _sizes_once_each(cls, value: list[BarSize]) -> list[BarSize]:
        return list(dict.fromkeys(value))

    @model_validator(mode="after")
    def _every_series_is_a_valid_job(self) -> Self:
        if len(self.symbols) * len(self.bar_sizes) > MAX_SERIES:
            raise ValueError(f"a universe holds at most {MAX_SERIES} series (symbols x bar sizes)")
        self.requests()  # the source, options, symbols and range, checked as a job checks them
        return self

    def series(self) -> list[tuple[str, BarSize]]:
        return [(symbol, size) for symbol in self.symbols for size in self.bar_sizes]

    def end_for(self, as_of: datetime) -> datetime:
        """The end of a run submitted at `as_of`: the universe's own, or `as_of` when open."""
        return self.end or as_utc(as_of)

    def requests(self, as_of: datetime | None = None) -> list[BarRequest]:
        """One request per series, for a run submitted at `as_of` (default: now)."""
        end = self.end_for(as_of or datetime.now(UTC))
        return [
            BarRequest(
                source=self.source,
                symbol=symbol,
                bar_size=size,
                start=self.start,
                end=end,
                options=self.options,
                time_limit_s=self.time_limit_s,
            )
            for symbol, size in self.series()
        ]


class RunJob(BaseModel):
    symbol: str
    bar_size: str
    job_id: str


class UniverseRun(BaseModel):
    """One submission of a universe: the jobs it fanned out, one per series."""

    universe: str
    run_id: str
    submitted_at: AwareDatetime
    # The moment an open universe's jobs end at, kept so a repeat of the run asks the same.
    as_of: AwareDatetime | None = None
    jobs: list[RunJob] = Field(default_factory=list)


def series_key(universe: str, run_id: str, symbol: str, bar_size: str) -> str:
    """The idempotency key of a run's job for one series: a repeat of the run finds it."""
    return f"universe:{universe}:{run_id}:{symbol}:{bar_size}"


def _universes_key(names: Names) -> str:
    return f"{names.namespace}universes"


def _runs_key(names: Names, universe: str) -> str:
    return f"{names.namespace}universe-runs:{universe}"


class UniverseStore:
    """The universes and their runs, in Redis."""

    def __init__(self, redis: Redis, names: Names) -> None:
        self.redis = redis
        self.names = names

    async def put(self, universe: Universe) -> bool:
        """Create or replace; True when it was new."""
        created: int = await self.redis.hset(
            _universes_key(self.names), universe.name, universe.model_dump_json()
        )
        return bool(created)

    async def get(self, name: str) -> Universe | None:
        if not _NAME.fullmatch(name):
            return None
        raw = await self.redis.hget(_universes_key(self.names), name)
        return None if raw is None else Universe.model_validate_json(raw)

    async def all(self) -> list[Universe]:
        stored: dict[Any, Any] = await self.redis.hgetall(_universes_key(self.names))
        return sorted(
            (Universe.model_validate_json(raw) for raw in stored.values()), key=lambda u: u.name
        )

    async def delete(self, name: str) -> bool:
        """Forget the universe and its runs' records; the jobs and their bars stay."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hdel(_universes_key(self.names), name)
            pipe.delete(_runs_key(self.names, name))
            deleted, _ = await pipe.execute()
        return bool(deleted)

    async def run(self, universe: str, run_id: str) -> UniverseRun | None:
        raw = await self.redis.hget(_runs_key(self.names, universe), run_id)
        return None if raw is None else UniverseRun.model_validate_json(raw)

    async def runs(self, universe: str) -> list[UniverseRun]:
        stored: dict[Any, Any] = await self.redis.hgetall(_runs_key(self.names, universe))
        found = [UniverseRun.model_validate_json(raw) for raw in stored.values()]
        return sorted(found, key=lambda r: (r.submitted_at, r.run_id), reverse=True)

    async def record_run(self, run: UniverseRun) -> None:
        await self.redis.hset(
            _runs_key(self.names, run.universe), run.run_id, run.model_dump_json()
        )


def new_run_id() -> str:
    """Sortable by time, unique enough: 20241204T180000Z-<8 hex>."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"


@dataclass(frozen=True, slots=True)
class RunSubmission:
    run: UniverseRun
    created: int  # jobs this call submitted
    replayed: int  # jobs an earlier submission of the same run had submitted already


async def submit_run(
    store: UniverseStore,
    commands: CommandBus,
    universe: Universe,
    run_id: str,
    *,
    correlation_id: str | None = None,
    mode: JobMode = JobMode.FULL,
    force: bool = False,
    as_of: datetime | None = None,
) -> RunSubmission:
    """Fan the universe out into one job per series, as the run `run_id`; idempotent.

    `mode` and `force` apply to every job of the run (a daily `top_up` of the universe).
    `as_of` (default: now) is where an open universe's jobs end; a repeat of the run keeps
    the first submission's, so its requests are the same ones.

    Raises backfill_bus.IdempotencyConflictError when the run was submitted before with other
    settings (the universe changed since): a run is one set of requests.
    """
    previous = await store.run(universe.name, run_id)
    known = {(j.symbol, j.bar_size): j for j in previous.jobs} if previous else {}
    now = datetime.now(UTC)
    run = UniverseRun(
        universe=universe.name,
        run_id=run_id,
        submitted_at=previous.submitted_at if previous else now,
        as_of=(previous.as_of if previous else None) or as_of or now,
    )
    created = replayed = 0
    for planned in universe.requests(run.as_of):
        request = planned.model_copy(update={"mode": mode, "force": force})
        key = (request.symbol, request.bar_size.value)
        if key in known:  # recorded by an earlier submission, even past the key's lifetime
            run.jobs.append(known[key])
            replayed += 1
            continue
        submission = await commands.submit(
            request,
            idempotency_key=series_key(universe.name, run_id, *key),
            correlation_id=correlation_id,
            universe=universe.name,
            universe_run=run_id,
        )
        run.jobs.append(RunJob(symbol=key[0], bar_size=key[1], job_id=submission.job_id))
        if submission.replayed:
            replayed += 1
        else:
            created += 1
        if len(run.jobs) % 50 == 0:  # a long fan-out interrupted still knows most of its jobs
            await store.record_run(run)
    await store.record_run(run)
    return RunSubmission(run, created, replayed)


@dataclass(frozen=True, slots=True)
class RunCancel:
    cancelled: int  # were queued: cancelled at once
    cancelling: int  # were running: stop within a poll
    already_ended: int


ENDED = frozenset({"succeeded", "failed", "cancelled"})


async def cancel_run(
    commands: CommandBus, run: UniverseRun, status_of: Mapping[str, str]
) -> RunCancel:
    """Cancel every job of the run that has not ended; `status_of` is each projected job's
    status (a job not projected yet is queued, and is cancelled)."""
    counts = {"cancelled": 0, "cancelling": 0}
    ended = 0
    for job in run.jobs:
        if status_of.get(job.job_id) in ENDED:
            ended += 1
            continue
        reason = f"universe {run.universe} run {run.run_id} cancelled"
        counts[await commands.cancel(job.job_id, reason=reason)] += 1
    return RunCancel(already_ended=ended, **counts)
