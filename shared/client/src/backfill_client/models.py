"""Jobs, universes and schedules as the API shows them, in light models: programs need no
SQLAlchemy, read model nor Redis store. They accept fields a newer API adds; the API alone
validates requests."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

TERMINAL_STATUSES = frozenset({"succeeded", "failed", "cancelled"})


class _View(BaseModel):
    # Newer APIs may add fields: they are ignored rather than refused.
    model_config = ConfigDict(extra="ignore", frozen=True)


class Progress(_View):
    chunks_done: int
    chunks_total: int
    bars_stored: int
    percent: float


class JobError(_View):
    outcome: str | None
    message: str | None


class Job(_View):
    job_id: str
    source: str
    symbol: str
    bar_size: str
    start: datetime
    end: datetime
    options: dict[str, Any]
    status: str
    attempt: int
    progress: Progress
    error: JobError | None = None
    submitted_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    instrument: str | None = None
    note: str | None = None
    notice: str | None = None
    # The universe and run that fanned the job out, when one did.
    universe: str | None = None
    universe_run: str | None = None

    @property
    def finished(self) -> bool:
        """True once the job succeeded, failed or was cancelled."""
        return self.status in TERMINAL_STATUSES


class Universe(_View):
    """Symbols that share a source, bar sizes, a range and options (one job each per run)."""

    name: str
    source: str
    symbols: list[str]
    bar_sizes: list[str]
    start: datetime
    end: datetime | None = None  # None: open, each run collects up to when it is submitted
    options: dict[str, Any] = Field(default_factory=dict)
    time_limit_s: float | None = None
    description: str | None = None


class RunJob(_View):
    symbol: str
    bar_size: str
    job_id: str


class RunAccepted(_View):
    """What submitting a run answers: its id and the job of every series."""

    universe: str
    run_id: str
    jobs: list[RunJob]
    created: int  # jobs this submission made
    replayed: int  # jobs an earlier submission of the same run id had made


class RunSummary(_View):
    run_id: str
    submitted_at: datetime
    jobs: int


class RunProgress(_View):
    """A run's jobs summed up; a job not projected yet counts as queued."""

    universe: str
    run_id: str
    submitted_at: datetime
    jobs_total: int
    by_status: dict[str, int]
    finished: bool  # every job succeeded, failed or was cancelled
    bars_stored: int
    chunks_done: int
    chunks_total: int
    percent: float  # the mean of the jobs' percent, an ended job counting 100
    jobs: list[Job]


class RunCancelled(_View):
    universe: str
    run_id: str
    cancelled: int  # were queued: cancelled at once
    cancelling: int  # were running: stop within a poll
    already_ended: int


class Schedule(_View):
    """A universe's run at every tick of `cron` in `timezone`, with what it did last."""

    name: str
    universe: str
    cron: str
    timezone: str
    mode: str
    description: str | None = None
    explained: str  # the cron in words, e.g. "At 16:30 on Monday through Friday (UTC)"
    paused: bool
    next_tick: datetime | None  # None while paused
    last_tick: datetime | None
    last_run_id: str | None
    last_fired_at: datetime | None
    last_error: str | None  # why the last tick could not fire (its universe is gone)


class Triggered(_View):
    schedule: str
    universe: str
    run_id: str
    jobs: list[RunJob]
    created: int
