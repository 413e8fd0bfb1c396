"""Appending to the event log (`events` stream) with a per-job sequence number."""

from __future__ import annotations

from typing import Any, TypeVar

from redis.asyncio import Redis

from backfill_bus.codec import encode, text
from backfill_bus.names import Names
from backfill_contracts import JobEvent, Message

E = TypeVar("E", bound=JobEvent)

# Per-job keys outlive any job (jobs are limited to hours) but do not pile up forever.
JOB_KEY_TTL_S = 30 * 86400


class EventLog:
    def __init__(self, redis: Redis, names: Names, producer: str) -> None:
        self.redis = redis
        self.names = names
        self.producer = producer

    async def next_seq(self, job_id: str) -> int:
        """The job's next sequence number, shared by every producer of its events (API, workers)."""
        key = self.names.job_key(job_id, "seq")
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.incr(key)
            pipe.expire(key, JOB_KEY_TTL_S)
            seq, _ = await pipe.execute()
        return int(seq)

    async def append(self, message: Message) -> str:
        return text(await self.redis.xadd(self.names.events, encode(message)))

    async def emit(self, event_type: type[E], *, job_id: str, attempt: int, **fields: Any) -> E:
        """Build a job event with the next seq and this producer, append it, and return it."""
        seq = await self.next_seq(job_id)
        event = event_type(
            job_id=job_id, attempt=attempt, seq=seq, producer=self.producer, **fields
        )
        await self.append(event)
        return event
