"""The one library that sends commands, used by the API, the console and programs alike."""

from __future__ import annotations

from uuid import uuid4

from redis.asyncio import Redis

from backfill_bus.cancellation import CancelResult, request_cancel
from backfill_bus.codec import encode
from backfill_bus.event_log import JOB_KEY_TTL_S, EventLog
from backfill_bus.groups import ensure_command_group
from backfill_bus.names import Names
from backfill_contracts import BarRequest, CollectBars, JobSubmitted


class CommandBus:
    def __init__(self, redis: Redis, names: Names, producer: str) -> None:
        self.redis = redis
        self.names = names
        self.events = EventLog(redis, names, producer)
        self.producer = producer
        self._groups_ready: set[str] = set()

    async def submit(
        self, request: BarRequest, *, idempotency_key: str | None = None
    ) -> CollectBars:
        """Record the job as queued and hand it to its source's workers, atomically.

        The submitted event and the command go out in one MULTI/EXEC, so there is never a
        recorded job without a command, nor a command for a job nobody recorded.
        """
        if request.source not in self._groups_ready:
            await ensure_command_group(self.redis, self.names, request.source)
            self._groups_ready.add(request.source)
        job_id = str(uuid4())
        fields = request.model_dump()
        command = CollectBars(
            **fields, job_id=job_id, idempotency_key=idempotency_key, producer=self.producer
        )
        submitted = JobSubmitted(
            **fields,
            job_id=job_id,
            seq=await self.events.next_seq(job_id),
            idempotency_key=idempotency_key,
            producer=self.producer,
            ts=command.ts,
        )
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self.names.job_key(job_id, "submitted"), b"1", ex=JOB_KEY_TTL_S)
            pipe.xadd(self.names.events, encode(submitted))
            pipe.xadd(self.names.command_stream(request.source), encode(command))
            await pipe.execute()
        return command

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
