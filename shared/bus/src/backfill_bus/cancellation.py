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

from dataclasses import dataclass
from typing import Any, Literal

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
        pipe.set(cancel_key(names, job_id), reason.encode(), ex=JOB_KEY_TTL_S)
        pipe.set(names.job_key(job_id, "owner"), CANCELLED_OWNER, nx=True, ex=JOB_KEY_TTL_S)
        pipe.get(names.job_key(job_id, "owner"))
        pipe.exists(names.job_key(job_id, "submitted"))
        _, won, owner, submitted = await pipe.execute()
    if won:
        if submitted:
            await events.emit(JobCancelled, job_id=job_id, attempt=attempt, reason=reason)
        return "cancelled"
    return "cancelled" if owner == CANCELLED_OWNER else "cancelling"


def cancel_key(names: Names, job_id: str) -> str:
    """The key holding the reason given when someone asked to cancel the job."""
    return names.job_key(job_id, "cancel")


def reason_of(value: bytes | str | None) -> str | None:
    """The reason as read from `cancel_key` (None: nobody asked)."""
    return None if value is None else text(value)


async def cancel_reason(redis: Redis, names: Names, job_id: str) -> str | None:
    """The reason given if someone asked to cancel the job, else None."""
    return reason_of(await redis.get(cancel_key(names, job_id)))


def submitted_key(names: Names, job_id: str) -> str:
    """The key noting that the job's submission is (being) put on the log."""
    return names.job_key(job_id, "submitted")


async def mark_submitted(redis: Redis, names: Names, job_id: str) -> bool:
    """Note that the job's submission is (being) put on the log; False if it already was."""
    return bool(await redis.set(submitted_key(names, job_id), b"1", nx=True, ex=JOB_KEY_TTL_S))


# Ownership, the attempt's clock and the cancel flag in one atomic step. The owner is set once by
# whoever comes first; when a cancel came first the job must not start; a job redelivered after
# its worker died is owned by that worker's id, and the new worker takes it. The attempt's
# deadline is set by its first start only. Optionally, in the same round trip: the job marked
# submitted (SET NX, before the take) and a page of a stream read (the worker's look ahead for
# cancels, see CancelScanner). Returns {owned, deadline, cancel reason, marked now, page}.
# KEYS: owner, deadline, cancel flag, submitted mark, stream to read.
# ARGV: worker id, ttl, cancelled owner, deadline, mark ('1' or ''), read after ('' for none),
#       read count.
_TAKE = """
local marked = 0
if ARGV[5] ~= '' and redis.call('SET', KEYS[4], '1', 'NX', 'EX', ARGV[2]) then marked = 1 end
local page = false
if ARGV[6] ~= '' then
  page = redis.call('XRANGE', KEYS[5], '(' .. ARGV[6], '+', 'COUNT', ARGV[7])
end
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then
  if redis.call('GET', KEYS[1]) == ARGV[3] then
    return {0, false, redis.call('GET', KEYS[3]), marked, page}
  end
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
end
redis.call('SET', KEYS[2], ARGV[4], 'NX', 'EX', ARGV[2])
return {1, redis.call('GET', KEYS[2]), redis.call('GET', KEYS[3]), marked, page}
"""


@dataclass(frozen=True, slots=True)
class Taken:
    """What a worker found when it took a job."""

    owned: bool  # False: a cancel got there first, and the job must not start
    deadline: float | None  # epoch seconds: the attempt's time limit, from its first start
    cancel_reason: str | None  # someone asked to cancel it (a running job stops at once)
    marked: bool = False  # this take marked the job submitted (see `take_ownership`)
    page: list[tuple[bytes, dict[bytes, bytes]]] | None = None  # read with the take, if asked


@dataclass(frozen=True, slots=True)
class PageAfter:
    """A stream's entries after `after`, up to `count`, read in the take's round trip."""

    stream: str
    after: str
    count: int


async def take_ownership(
    redis: Redis,
    names: Names,
    job_id: str,
    worker_id: str,
    *,
    attempt: int,
    deadline: float,
    mark_submitted: bool = False,
    read: PageAfter | None = None,
) -> Taken:
    """Claim a job for a worker and start its attempt's clock, in one round trip.

    `deadline` (epoch seconds) holds only if this is the attempt's first start: a reclaimed or
    handed-back attempt keeps the deadline its first start set, which is returned. With
    `mark_submitted`, the job is marked submitted first (`mark_submitted`'s SET NX: `marked`
    says whether this call did it); with `read`, that page is read too.
    """
    keys = [
        names.job_key(job_id, "owner"),
        names.job_key(job_id, f"deadline:{attempt}"),
        cancel_key(names, job_id),
        submitted_key(names, job_id),
        read.stream if read is not None else names.job_key(job_id, "owner"),
    ]
    args: list[bytes | int | str] = [
        worker_id.encode(),
        JOB_KEY_TTL_S,
        CANCELLED_OWNER,
        f"{deadline:.3f}",
        "1" if mark_submitted else "",
        read.after if read is not None else "",
        read.count if read is not None else 0,
    ]
    reply: Any = await redis.register_script(_TAKE)(keys=keys, args=args)
    owned, stored, reason, marked, page = reply
    return Taken(
        owned=bool(owned),
        deadline=None if stored is None else float(stored),
        cancel_reason=None if reason is None else text(reason),
        marked=bool(marked),
        page=_entries(page) if read is not None else None,
    )


def _entries(page: Any) -> list[tuple[bytes, dict[bytes, bytes]]]:
    """XRANGE's reply through a script, shaped as redis-py's xrange returns it."""
    return [(entry_id, dict(zip(flat[::2], flat[1::2], strict=True))) for entry_id, flat in page]
