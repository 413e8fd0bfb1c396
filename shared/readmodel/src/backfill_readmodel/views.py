"""What readers get back: the shapes the API serves and the console shows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class Progress(BaseModel):
    chunks_done: int
    chunks_total: int
    bars_stored: int
    percent: float


class JobError(BaseModel):
    outcome: str | None
    message: str | None


class JobView(BaseModel):
    job_id: str
    source: str
    symbol: str
    bar_size: str
    start: datetime
    end: datetime
    options: dict[str, Any]
    status: str
    attempt: int
    price_type: str | None
    worker_id: str | None
    progress: Progress
    error: JobError | None
    submitted_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime
    # What the bars are stored under when it differs from `symbol` (a future: ESH5).
    instrument: str | None = None
    # What a running job is waiting for (a pacing slot, the gateway), in plain words.
    note: str | None = None
    # Set while the job waits on something the user should know about, in plain words.
    notice: str | None = None
    # The request that asked for the latest attempt (X-Correlation-ID): its log lines carry it.
    correlation_id: str | None = None
    # The universe and run that fanned the job out, when one did.
    universe: str | None = None
    universe_run: str | None = None


class JobPage(BaseModel):
    jobs: list[JobView]
    next_cursor: str | None


class JobEventView(BaseModel):
    event_id: str
    seq: int
    attempt: int
    type: str
    ts: datetime
    producer: str
    data: dict[str, Any]


class ChunkView(BaseModel):
    chunk: int
    start: datetime
    end: datetime
    status: str
    bars: int
    tries: int
    outcome: str | None
    message: str | None


class BarView(BaseModel):
    ts: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float
    adj_close: float | None = None  # where the source gives it (Yahoo)


class WorkerView(BaseModel):
    worker_id: str
    source: str
    host: str
    pid: int
    state: str
    current_job: str | None
    started_at: datetime
    last_heartbeat: datetime
    alive: bool
    info: dict[str, Any]


class Stats(BaseModel):
    jobs_total: int
    by_status: dict[str, int]
    by_source: dict[str, dict[str, int]]
    success_rate: float | None
    mean_duration_s: float | None
    bars_stored: int


class RunTotals(BaseModel):
    """A universe run's jobs summed up (backfill_readmodel.queries.run_totals)."""

    jobs_total: int = Field(description="jobs the run submitted (one per series)")
    by_status: dict[str, int] = Field(
        description="jobs per status; a job not projected yet counts as queued"
    )
    finished: bool = Field(description="every job succeeded, failed or was cancelled")
    bars_stored: int
    chunks_done: int
    chunks_total: int
    percent: float = Field(
        description="how far the run is to its end: the mean of its jobs' percent, an ended "
        "job (succeeded, failed or cancelled) counting 100"
    )
