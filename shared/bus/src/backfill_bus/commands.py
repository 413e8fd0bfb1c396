"""The one library that sends commands, used by the API, the console and programs alike."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import uuid4

from redis.asyncio import Redis

from backfill_bus.cancellation import CancelResult, request_cancel
from backfill_bus.codec import encode
from backfill_bus.event_log import JOB_KEY_TTL_S, EventLog
from backfill_bus.groups import ensure_command_group
from backfill_bus.idempotency import (
    DEFAULT_IDEMPOTENCY_TTL_S,
    IdempotencyConflictError,
    KeyClaim,
    fingerprint,
    idempotency_key_name,
)
from backfill_bus.names import Names
from backfill_contracts import DATA_FIELD, BarRequest, CollectBars, JobSubmitted

# Claim the key, record the job and publish its command, or none of it: a key never names a
# job that was not published, and of two concurrent submits with one key exactly one wins.
_SUBMIT_ONCE = """
local held = redis.call('GET', KEYS[1])
if held then return held end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
redis.call('SET', KEYS[2], '1', 'EX', ARGV[3])
redis.call('XADD', KEYS[3], '*', ARGV[4], ARGV[5])
redis.call('XADD', KEYS[4], '*', ARGV[4], ARGV[6])
redis.call('SET', KEYS[5], '1', 'EX', ARGV[3])
redis.call('SET', KEYS[6], ARGV[5], 'EX', ARGV[7])
return false
"""


# A new job's submitted event is kept beside the log, so the API can show the job as queued
# before the projector has folded it (a GET right after the POST); the projector deletes it
# once folded. The TTL only bounds what a projector further behind than hours leaves.
QUEUED_VIEW_TTL_S = 6 * 3600


def queued_key(names: Names, job_id: str) -> str:
    return names.job_key(job_id, "queued")


async def queued_submission(redis: Redis, names: Names, job_id: str) -> JobSubmitted | None:
    """A job's submitted event as the API published it, while it is kept; None otherwise."""
    raw = await redis.get(queued_key(names, job_id))
    return None if raw is None else JobSubmitted.model_validate_json(raw)


@dataclass(frozen=True, slots=True)
class Submission:
    """The job a submit names: a new one, or (`replayed`) the one its idempotency key named."""

    job_id: str
    replayed: bool = False
    command: CollectBars | None = None  # what was published; None on a replay


class CommandBus:
    def __init__(
        self,
        redis: Redis,
        names: Names,
        producer: str,
        idempotency_ttl_s: int = DEFAULT_IDEMPOTENCY_TTL_S,
    ) -> None:
        self.redis = redis
        self.names = names
        self.events = EventLog(redis, names, producer)
        self.producer = producer
        self.idempotency_ttl_s = idempotency_ttl_s
        self._groups_ready: set[str] = set()
        self._submit_once = redis.register_script(_SUBMIT_ONCE)

    async def submit(
        self,
        request: BarRequest,
        *,
        idempotency_key: str | None = None,
        correlation_id: str | None = None,
        universe: str | None = None,
        universe_run: str | None = None,
    ) -> Submission:
        """Record the job as queued and hand it to its source's workers, atomically.

        The submitted event and the command go out in one atomic step, so there is never a
        recorded job without a command, nor a command for a job nobody recorded. With an
        `idempotency_key` that already names a job, nothing is published and that job is
        returned (`replayed`); raises IdempotencyConflictError if it was for another request.
        """
        # Only a keyed submit needs the fingerprint: the plain path stays as cheap as it was.
        request_fingerprint = "" if idempotency_key is None else fingerprint(request)
        if idempotency_key is not None:
            # A repeat needs no sequence number nor group: answer it before creating either.
            held = await self.redis.get(idempotency_key_name(self.names, idempotency_key))
            if held is not None:
                return _replay(idempotency_key, KeyClaim.decode(held), request_fingerprint)
        if request.source not in self._groups_ready:
            await ensure_command_group(self.redis, self.names, request.source)
            self._groups_ready.add(request.source)
        job_id = str(uuid4())
        fields = request.model_dump()
        command = CollectBars(
            **fields,
            job_id=job_id,
            idempotency_key=idempotency_key,
            correlation_id=correlation_id,
            universe=universe,
            universe_run=universe_run,
            producer=self.producer,
        )
        submitted = JobSubmitted(
            **fields,
            job_id=job_id,
            # A new job's first event: no producer knows its id yet, so its seq is 1 (and the
            # seq key is set with it), one round trip less than asking Redis for it.
            seq=1,
            idempotency_key=idempotency_key,
            correlation_id=correlation_id,
            universe=universe,
            universe_run=universe_run,
            producer=self.producer,
            ts=command.ts,
        )
        submitted_key = self.names.job_key(job_id, "submitted")
        submitted_json = submitted.model_dump_json()
        if idempotency_key is None:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.set(submitted_key, b"1", ex=JOB_KEY_TTL_S)
                pipe.xadd(self.names.events, {DATA_FIELD: submitted_json})
                pipe.set(queued_key(self.names, job_id), submitted_json, ex=QUEUED_VIEW_TTL_S)
                pipe.xadd(self.names.command_stream(request.source), encode(command))
                pipe.set(self.names.job_key(job_id, "seq"), 1, ex=JOB_KEY_TTL_S)
                await pipe.execute()
            return Submission(job_id, command=command)
        held = await self._submit_once(
            keys=[
                idempotency_key_name(self.names, idempotency_key),
                submitted_key,
                self.names.events,
                self.names.command_stream(request.source),
                self.names.job_key(job_id, "seq"),
                queued_key(self.names, job_id),
            ],
            args=[
                KeyClaim(job_id, request_fingerprint).encode(),
                self.idempotency_ttl_s,
                JOB_KEY_TTL_S,
                DATA_FIELD,
                submitted_json,
                command.model_dump_json(),
                QUEUED_VIEW_TTL_S,
            ],
        )
        if held is not None:  # another submit with this key won the race
            return _replay(idempotency_key, KeyClaim.decode(held), request_fingerprint)
        return Submission(job_id, command=command)

    async def retry(self, request: BarRequest, job_id: str, attempt: int) -> CollectBars | None:
        """Run a failed or cancelled job again as `attempt`, resuming from its checkpoints.

        None when that attempt was already requested (a double click, two API replicas).
        """
        if not await self.redis.set(
            self.names.job_key(job_id, f"attempt:{attempt}"), b"1", nx=True, ex=JOB_KEY_TTL_S
        ):
            return None
        fields = request.model_dump()
        command = CollectBars(**fields, job_id=job_id, attempt=attempt, producer=self.producer)
        submitted = JobSubmitted(
            **fields,
            job_id=job_id,
            attempt=attempt,
            seq=await self.events.next_seq(job_id),
            producer=self.producer,
            ts=command.ts,
        )
        async with self.redis.pipeline(transaction=True) as pipe:
            # The new attempt starts clean: no cancel flag, no owner, a fresh time limit.
            pipe.delete(self.names.job_key(job_id, "cancel"), self.names.job_key(job_id, "owner"))
            pipe.xadd(self.names.events, encode(submitted))
            pipe.xadd(self.names.command_stream(request.source), encode(command))
            await pipe.execute()
        return command

    async def cancel(self, job_id: str, reason: str = "cancelled by request") -> CancelResult:
        return await request_cancel(self.redis, self.names, self.events, job_id, reason)


def _replay(key: str, claim: KeyClaim, request_fingerprint: str) -> Submission:
    if claim.fingerprint != request_fingerprint:
        raise IdempotencyConflictError(key, claim.job_id)
    return Submission(claim.job_id, replayed=True)
