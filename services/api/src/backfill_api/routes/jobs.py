"""Submitting, listing, inspecting and cancelling jobs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Header, HTTPException, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field

from backfill_api.dependencies import ConnectionDep, ServicesDep
from backfill_bus import IdempotencyConflictError, queued_submission
from backfill_contracts import BarRequest, JobSubmitted, as_utc
from backfill_readmodel import queries
from backfill_readmodel.views import ChunkView, JobEventView, JobPage, JobView, Progress

router = APIRouter(prefix="/jobs", tags=["jobs"])


class JobRequest(BarRequest):
    """A collection job. `start` is inclusive, `end` exclusive; dates without a zone are UTC."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "source": "sim",
                    "symbol": "AAPL",
                    "bar_size": "1m",
                    "start": "2024-01-01",
                    "end": "2024-04-01",
                    "options": {},
                }
            ]
        },
    )

    idempotency_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="Same as the Idempotency-Key header (which is preferred); both must agree.",
    )


class Accepted(BaseModel):
    job_id: str
    status: str = Field(
        default="queued",
        description="`queued` for a new job; on a replay, the job's status now.",
    )
    replayed: bool = Field(
        default=False, description="True when the idempotency key already named this job."
    )


class CancelAccepted(BaseModel):
    job_id: str
    status: Literal["cancelled", "cancelling"]


class RetryAccepted(BaseModel):
    job_id: str
    attempt: int
    status: Literal["queued"] = "queued"


async def _with_notices(conn: ConnectionDep, services: ServicesDep, page: JobPage) -> JobPage:
    return await queries.add_waiting_notices(
        conn, page, datetime.now(UTC), services.settings.worker_timeout_s
    )


IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        description="A repeat with the same key returns the job it named (200) instead of "
        "creating another; with a different request it is refused (422).",
    ),
]
CorrelationIdHeader = Annotated[
    str | None,
    Header(
        alias="X-Correlation-ID",
        min_length=1,
        max_length=200,
        description="Kept on the job's command and submitted event, to follow it in logs.",
    ),
]
REPLAYED_HEADER = "Idempotent-Replayed"


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    responses={
        200: {"model": Accepted, "description": "A replay: the idempotency key named this job"},
        422: {"description": "Invalid request, or an idempotency key used for another request"},
    },
)
async def submit_job(
    request: JobRequest,
    services: ServicesDep,
    response: Response,
    idempotency_key: IdempotencyKeyHeader = None,
    correlation_id: CorrelationIdHeader = None,
) -> Accepted:
    """Accept a job: it is on the durable log as queued before this answers.

    With an idempotency key (the `Idempotency-Key` header or the `idempotency_key` field) that
    already names a job, nothing new is created: 200 with that job, `replayed: true` and the
    header `Idempotent-Replayed: true`.
    """
    key = _one_key(idempotency_key, request.idempotency_key)
    try:
        submission = await services.commands.submit(
            BarRequest(**request.model_dump(exclude={"idempotency_key"})),
            idempotency_key=key,
            correlation_id=correlation_id,
        )
    except IdempotencyConflictError as error:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(error)) from error
    if not submission.replayed:
        return Accepted(job_id=submission.job_id)
    response.status_code = status.HTTP_200_OK
    response.headers[REPLAYED_HEADER] = "true"
    async with services.engine.connect() as conn:
        job = await queries.get_job(conn, submission.job_id)
    # Not projected yet: it is on the log as queued, so that is its status.
    return Accepted(
        job_id=submission.job_id, status="queued" if job is None else job.status, replayed=True
    )


def _one_key(header: str | None, field: str | None) -> str | None:
    if header is not None and field is not None and header != field:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            "the Idempotency-Key header and the idempotency_key field differ; send one of them",
        )
    return header if header is not None else field


@router.get("", response_model=JobPage)
async def list_jobs(
    conn: ConnectionDep,
    services: ServicesDep,
    status_: str | None = Query(default=None, alias="status"),
    source: str | None = None,
    symbol: str | None = None,
    submitted_from: datetime | None = Query(
        default=None, description="submitted at or after (a date or naive time is UTC)"
    ),
    submitted_before: datetime | None = Query(default=None, description="submitted before"),
    limit: int = Query(default=50, ge=1, le=500),
    cursor: str | None = None,
) -> JobPage:
    """Jobs, newest first; pass `next_cursor` back as `cursor` for the next page."""
    filters = queries.JobFilter(
        status=status_,
        source=source,
        symbol=symbol,
        submitted_from=None if submitted_from is None else as_utc(submitted_from),
        submitted_before=None if submitted_before is None else as_utc(submitted_before),
    )
    try:
        page = await queries.list_jobs(conn, filters, limit=limit, cursor=cursor)
    except queries.InvalidCursorError as error:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(error)) from error
    return await _with_notices(conn, services, page)


@router.get("/active", response_model=JobPage)
async def active_jobs(
    conn: ConnectionDep,
    services: ServicesDep,
    limit: int = Query(default=500, ge=1, le=5000),
) -> JobPage:
    """Jobs that are queued, running or retrying."""
    page = await queries.list_jobs(
        conn, queries.JobFilter(), limit=limit, statuses=queries.ACTIVE_STATUSES
    )
    return await _with_notices(conn, services, page)


async def _job_or_404(conn: ConnectionDep, services: ServicesDep, job_id: str) -> JobView:
    """The job as projected; one just submitted and not folded yet, as queued; else 404."""
    job = await queries.get_job(conn, job_id)
    if job is not None:
        return job
    submitted = await queued_submission(services.redis, services.commands.names, job_id)
    if submitted is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no job {job_id}")
    return _queued_view(submitted)


def _queued_view(event: JobSubmitted) -> JobView:
    """What the projection will show once it folds the job's first event: queued, nothing done.

    Without it a GET right after the POST would say "no such job" for a job that exists.
    """
    return JobView(
        job_id=event.job_id,
        source=event.source,
        symbol=event.symbol,
        bar_size=event.bar_size.value,
        start=event.start,
        end=event.end,
        options=event.options,
        status="queued",
        attempt=event.attempt,
        price_type=None,
        worker_id=None,
        progress=Progress(chunks_done=0, chunks_total=0, bars_stored=0, percent=0.0),
        error=None,
        submitted_at=event.ts,
        started_at=None,
        finished_at=None,
        updated_at=event.ts,
        correlation_id=event.correlation_id,
        universe=event.universe,
        universe_run=event.universe_run,
    )


@router.get("/{job_id}", response_model=JobView)
async def get_job(job_id: str, conn: ConnectionDep, services: ServicesDep) -> JobView:
    job = await _job_or_404(conn, services, job_id)
    page = await _with_notices(conn, services, JobPage(jobs=[job], next_cursor=None))
    return page.jobs[0]


@router.get("/{job_id}/events", response_model=list[JobEventView])
async def job_events(job_id: str, conn: ConnectionDep, services: ServicesDep) -> list[JobEventView]:
    """The job's history, in order (empty for a job submitted a moment ago, not folded yet)."""
    await _job_or_404(conn, services, job_id)
    return await queries.job_events_of(conn, job_id)


@router.get("/{job_id}/chunks", response_model=list[ChunkView])
async def job_chunks(job_id: str, conn: ConnectionDep, services: ServicesDep) -> list[ChunkView]:
    """The job's chunk plan with each chunk's outcome."""
    await _job_or_404(conn, services, job_id)
    return await queries.job_chunks_of(conn, job_id)


@router.post(
    "/{job_id}/cancel", status_code=status.HTTP_202_ACCEPTED, response_model=CancelAccepted
)
async def cancel_job(job_id: str, conn: ConnectionDep, services: ServicesDep) -> CancelAccepted:
    """Cancel a job: a queued job is cancelled at once, a running one stops between chunks."""
    job = await _job_or_404(conn, services, job_id)
    if job.status in queries.TERMINAL_STATUSES:
        raise HTTPException(status.HTTP_409_CONFLICT, f"job {job_id} already {job.status}")
    return CancelAccepted(job_id=job_id, status=await services.commands.cancel(job_id))


@router.post("/{job_id}/retry", status_code=status.HTTP_202_ACCEPTED, response_model=RetryAccepted)
async def retry_job(job_id: str, conn: ConnectionDep, services: ServicesDep) -> RetryAccepted:
    """Run a failed or cancelled job again; it resumes after the chunks it already collected."""
    job = await _job_or_404(conn, services, job_id)
    if job.status not in ("failed", "cancelled"):
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"job {job_id} is {job.status}: only a failed or cancelled job can be retried",
        )
    request = await queries.retry_request(conn, job)
    command = await services.commands.retry(request, job_id, job.attempt + 1)
    if command is None:
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"attempt {job.attempt + 1} of job {job_id} already requested"
        )
    return RetryAccepted(job_id=job_id, attempt=command.attempt)
