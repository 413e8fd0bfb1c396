"""Events: the append-only log (`events` stream) that the projector folds into tables.

Every job event carries the job id, the attempt it belongs to and a per-job `seq`, so the history
of a job reads in order even when several workers took part in it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter

from backfill_contracts.bars import BarBatch, BarSize, CorporateAction
from backfill_contracts.message import Message
from backfill_contracts.modes import JobMode
from backfill_contracts.outcomes import Outcome


class ChunkSpec(BaseModel):
    """One request to the source: bars with start <= ts < end."""

    model_config = ConfigDict(frozen=True)

    index: int = Field(ge=0)
    start: AwareDatetime
    end: AwareDatetime


class JobEvent(Message):
    job_id: str
    attempt: int = Field(default=1, ge=1)
    seq: int = Field(default=0, ge=0)


class JobSubmitted(JobEvent):
    """The job exists: recorded as queued the moment a client's request was accepted.

    Submitted again with a higher attempt when a failed or cancelled job is retried.
    """

    type: Literal["job.submitted"] = "job.submitted"
    source: str
    symbol: str
    bar_size: BarSize
    start: AwareDatetime
    end: AwareDatetime
    options: dict[str, Any] = Field(default_factory=dict)
    idempotency_key: str | None = None
    time_limit_s: float | None = None
    correlation_id: str | None = None
    mode: JobMode = JobMode.FULL
    force: bool = False
    # The universe and its run that fanned this job out (POST /universes/{name}/runs).
    universe: str | None = None
    universe_run: str | None = None


class JobStarted(JobEvent):
    """A worker took the job and planned it."""

    type: Literal["job.started"] = "job.started"
    worker_id: str
    price_type: str
    chunks: list[ChunkSpec]
    # Chunks already collected by an earlier delivery or attempt: the job resumes after them.
    resumed_chunks: list[int] = Field(default_factory=list)
    # The source's own name for what is collected when it differs from the job's symbol (a
    # future's local symbol, ESH5): the key its bars are stored under.
    instrument: str | None = None
    # Chunks of the source's plan left out because what they ask for is stored already (or,
    # for fill_gaps and top_up, not missing): `chunks` holds only what is fetched.
    skipped_chunks: int = 0


class ChunkCollected(JobEvent):
    """A chunk came back from the source; `bars` may be empty when the window had no data."""

    type: Literal["chunk.collected"] = "chunk.collected"
    chunk: int = Field(ge=0)
    source: str
    symbol: str
    bar_size: BarSize
    price_type: str
    bars: BarBatch
    actions: list[CorporateAction] = Field(default_factory=list)
    exchange_tz: str | None = None  # the instrument's own zone; bars are always UTC
    # The job whose fetch these bars came from, when it was another job's (worker sharing.py):
    # two jobs needing the same chunk at once make one request.
    shared_from: str | None = Field(default=None, max_length=64)

    @property
    def no_data(self) -> bool:
        return len(self.bars) == 0


class ChunkFailed(JobEvent):
    """A chunk request failed; `will_retry` says whether the worker tries it again."""

    type: Literal["chunk.failed"] = "chunk.failed"
    chunk: int = Field(ge=0)
    outcome: Outcome
    message: str
    will_retry: bool


class JobWaiting(JobEvent):
    """The job waits for its source without failing: a pacing slot, a gateway coming back.

    `chunk` is the chunk about to be fetched (None while the job is being planned). No try is
    used up; the job's time limit and cancels still apply while it waits. `until` is when the
    wait should end, when the source knows it.
    """

    type: Literal["job.waiting"] = "job.waiting"
    chunk: int | None = Field(default=None, ge=0)
    outcome: Outcome
    message: str
    until: AwareDatetime | None = None


class JobRetrying(JobEvent):
    """The worker waits `delay_s` before trying chunk `chunk` again (try number `next_try`)."""

    type: Literal["job.retrying"] = "job.retrying"
    chunk: int = Field(ge=0)
    next_try: int = Field(ge=2)
    delay_s: float = Field(ge=0)
    outcome: Outcome


class JobSucceeded(JobEvent):
    type: Literal["job.succeeded"] = "job.succeeded"
    chunks: int = Field(ge=0)
    bars: int = Field(ge=0)


class JobFailed(JobEvent):
    type: Literal["job.failed"] = "job.failed"
    outcome: Outcome
    message: str
    chunk: int | None = None


class JobCancelled(JobEvent):
    type: Literal["job.cancelled"] = "job.cancelled"
    reason: str = "cancelled by request"


class JobHandedBack(JobEvent):
    """A stopping worker gave the job back; another worker resumes it from its checkpoints."""

    type: Literal["job.handed_back"] = "job.handed_back"
    worker_id: str
    reason: str


class JobWebhook(JobEvent):
    """A finished job was posted to a webhook subscriber (or could not be, after `tries`).

    History only: whatever a webhook does, the job's status stays as it ended.
    """

    type: Literal["job.webhook"] = "job.webhook"
    url: str  # without credentials or query
    ok: bool
    status_code: int | None = None
    tries: int = Field(ge=1)
    message: str = ""
    # Which subscription this delivery was for (absent in events from before there were many).
    subscription_id: str | None = None


class CleanupRequested(Message):
    """Delete finished jobs (not their bars) that ended before `finished_before`.

    An event rather than a direct delete, so the projector stays the only writer and a rebuild
    from the log reaches the same tables.
    """

    type: Literal["maintenance.cleanup"] = "maintenance.cleanup"
    finished_before: AwareDatetime
    requested_by: str


class WorkerHeartbeat(Message):
    """A worker is alive: sent on a timer and whenever its state changes."""

    type: Literal["worker.heartbeat"] = "worker.heartbeat"
    worker_id: str
    source: str
    host: str
    pid: int
    state: Literal["starting", "idle", "busy", "stopping", "stopped"]
    current_job: str | None = None
    started_at: datetime
    info: dict[str, Any] = Field(default_factory=dict)


TERMINAL_EVENT_TYPES = frozenset({"job.succeeded", "job.failed", "job.cancelled"})

Event = Annotated[
    JobSubmitted
    | JobStarted
    | ChunkCollected
    | ChunkFailed
    | JobWaiting
    | JobRetrying
    | JobSucceeded
    | JobFailed
    | JobCancelled
    | JobHandedBack
    | JobWebhook
    | WorkerHeartbeat
    | CleanupRequested,
    Field(discriminator="type"),
]
AnyJobEvent = (
    JobSubmitted
    | JobStarted
    | ChunkCollected
    | ChunkFailed
    | JobWaiting
    | JobRetrying
    | JobSucceeded
    | JobFailed
    | JobCancelled
    | JobHandedBack
    | JobWebhook
)
AnyEvent = AnyJobEvent | WorkerHeartbeat | CleanupRequested
EVENT_ADAPTER: TypeAdapter[AnyEvent] = TypeAdapter(Event)


def parse_event(raw: bytes | str) -> AnyEvent:
    """Decode an event from its JSON body; raises pydantic.ValidationError with the reasons."""
    return EVENT_ADAPTER.validate_json(raw)
