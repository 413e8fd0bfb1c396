"""Appending to the event log (`events` stream) with a per-job sequence number."""

from __future__ import annotations

from dataclasses import dataclass
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
# The same, and a field of a hash set with it (a worker's checkpoint for the chunk the event
# reports): the event and what it implies are on Redis together or not at all, in one round trip.
_EMIT_NOTED = """
local seq = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[1])
local id = redis.call('XADD', KEYS[2], '*', ARGV[2], ARGV[3] .. seq .. ARGV[4])
redis.call('HSET', KEYS[3], ARGV[5], ARGV[6])
redis.call('EXPIRE', KEYS[3], ARGV[1])
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
        self._emit_noted = redis.register_script(_EMIT_NOTED)

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

    async def emit(
        self,
        event_type: type[E],
        *,
        job_id: str,
        attempt: int,
        note: Note | None = None,
        **fields: Any,
    ) -> E:
        """Build a job event with the next seq and this producer, append it, and return it.

        `note`: a hash field set in the same atomic step (expiring with the job's keys).
        """
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
        if not found:  # never expected; the slower way is still correct
            event = event.model_copy(update={"seq": await self.next_seq(job_id)})
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.xadd(self.names.events, encode(event))
                if note is not None:
                    pipe.hset(note.key, note.field, note.value)
                    pipe.expire(note.key, JOB_KEY_TTL_S)
                await pipe.execute()
            return event
        keys = [self.names.job_key(job_id, "seq"), self.names.events]
        args: list[Any] = [JOB_KEY_TTL_S, DATA_FIELD, head + b'"seq":', tail]
        if note is None:
            reply: Any = await self._emit(keys=keys, args=args)
        else:
            keys.append(note.key)
            reply = await self._emit_noted(keys=keys, args=[*args, note.field, note.value])
        return event.model_copy(update={"seq": int(reply[0])})


@dataclass(frozen=True, slots=True)
class Note:
    """A field of a hash, set together with an event (see `EventLog.emit`)."""

    key: str
    field: str
    value: str | int
