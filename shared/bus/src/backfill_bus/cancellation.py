"""Cancelling jobs, and the ownership that makes "a queued job that is cancelled never starts" true.

Two keys per job: `owner`, set once with SET NX by whoever gets there first (a worker starting the
job, or a canceller while the job is still queued), and `cancel`, the flag a running worker checks
between chunks. A worker that finds `owner` taken by a cancel never starts the job.

The cancelled event of a queued job is emitted by the canceller when the job's submission is on
the log. A job published straight onto a stream is only recorded when a worker takes it; if it
was cancelled before that, the worker emits the cancelled event right after recording it, so the
log never holds a cancel for a job it does not know yet.
"""

from __future__ import annotations

from typing import Literal

from redis.asyncio import Redis

from backfill_bus.codec import text
from backfill_bus.event_log import JOB_KEY_TTL_S, EventLog
from backfill_bus.names import Names
from backfill_contracts import JobCancelled

CANCELLED_OWNER = b"cancelled"
CancelResult = Literal["cancelled", "cancelling"]


async def request_cancel(
    redis: Redis, names: Names, events: EventLog, job_id: str, reason: str, attempt: int = 1
) -> CancelResult:
    """Cancel a job: at once if no worker has it yet, else between its chunks."""
    async with redis.pipeline(transaction=True) as pipe:
        pipe.set(names.job_key(job_id, "cancel"), reason.encode(), ex=JOB_KEY_TTL_S)
        pipe.set(names.job_key(job_id, "owner"), CANCELLED_OWNER, nx=True, ex=JOB_KEY_TTL_S)
        pipe.get(names.job_key(job_id, "owner"))
        pipe.exists(names.job_key(job_id, "submitted"))
        _, won, owner, submitted = await pipe.execute()
    if won:
        if submitted:
            await events.emit(JobCancelled, job_id=job_id, attempt=attempt, reason=reason)
        return "cancelled"
    return "cancelled" if owner == CANCELLED_OWNER else "cancelling"


async def cancel_reason(redis: Redis, names: Names, job_id: str) -> str | None:
    """The reason given if someone asked to cancel the job, else None."""
    value = await redis.get(names.job_key(job_id, "cancel"))
    return None if value is None else text(value)


async def mark_submitted(redis: Redis, names: Names, job_id: str) -> bool:
    """Note that the job's submission is (being) put on the log; False if it already was."""
    key = names.job_key(job_id, "submitted")
    return bool(await redis.set(key, b"1", nx=True, ex=JOB_KEY_TTL_S))


async def take_ownership(redis: Redis, names: Names, job_id: str, worker_id: str) -> bool:
    """Claim a job for a worker; False when a cancel got there first and the job must not start.

    A job redelivered after its worker died is owned by that worker's id: the new worker takes it.
    """
    key = names.job_key(job_id, "owner")
    if await redis.set(key, worker_id.encode(), nx=True, ex=JOB_KEY_TTL_S):
        return True
    if await redis.get(key) == CANCELLED_OWNER:
        return False
    await redis.set(key, worker_id.encode(), ex=JOB_KEY_TTL_S)
    return True
