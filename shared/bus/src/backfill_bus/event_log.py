"""Appending to the event log (`events` stream) with a per-job sequence number."""

from __future__ import annotations

from typing import Any, TypeVar

from redis.asyncio import Redis

from backfill_bus.codec import encode, text
from backfill_bus.names import Names
from backfill_contracts import DATA_FIELD, JobEvent, Message

E = TypeVar("E", bound=JobEvent)

# Per-job keys outlive any job (jobs are limited to hours) but do not pile up forever.
JOB_KEY_TTL_S = 30 * 86400

# One round trip per event instead of two (INCR, then XADD), and the log's order is the seq
# order even when two producers emit for one job at once. The body comes in two halves around
# its seq, which only Redis knows: JSON is spliced, never re-encoded, so floats stay exact.
_EMIT = """
local seq = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[1])
local id = redis.call('XADD', KEYS[2], '*', ARGV[2], ARGV[3] .. seq .. ARGV[4])
return {seq, id}
"""
# A seq no job reaches, written into the body where the real one goes.
_SEQ_PLACEHOLDER = 987_654_321_987_654
_SEQ_TEXT = f'"seq":{_SEQ_PLACEHOLDER}'.encode()


class EventLog:
    def __init__(self, redis: Redis, names: Names, producer: str) -> None:
        self.redis = redis
        self.names = names
        self.producer = producer
        self._emit = redis.register_script(_EMIT)

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
        event = event_type(
            job_id=job_id,
            attempt=attempt,
            seq=_SEQ_PLACEHOLDER,
            producer=self.producer,
            **fields,
        )
        body = event.model_dump_json().encode()
        # The envelope's seq is serialized before any field of the event's own (pydantic keeps
        # declaration order, and JobEvent declares it), and quotes inside strings are escaped:
        # the first match is the envelope's, whatever a user's options hold.
        head, found, tail = body.partition(_SEQ_TEXT)
        if not found:  # never expected; the two-round-trip way is still correct
            event = event.model_copy(update={"seq": await self.next_seq(job_id)})
            await self.append(event)
            return event
        keys = [self.names.job_key(job_id, "seq"), self.names.events]
        reply: Any = await self._emit(
            keys=keys, args=[JOB_KEY_TTL_S, DATA_FIELD, head + b'"seq":', tail]
        )
        return event.model_copy(update={"seq": int(reply[0])})
