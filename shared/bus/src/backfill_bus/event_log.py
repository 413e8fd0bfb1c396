"""Appending to the event log (`events` stream) with a per-job sequence number."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import NoScriptError

from backfill_bus.codec import encode, text
from backfill_bus.names import Names
from backfill_contracts import DATA_FIELD, JobEvent, Message

E = TypeVar("E", bound=JobEvent)

# Per-job keys outlive any job (jobs are limited to hours) but do not pile up forever.
JOB_KEY_TTL_S = 30 * 86400

# Events appended in one atomic round trip, each with the job's next seq: INCR then XADD per event
# would be two, and the log's order is the seq order even when two producers emit for one job
# at once. A body comes in two halves around its seq, which only Redis knows: JSON is spliced,
# never re-encoded, so floats stay exact. With an event, optionally, a field of a hash (a worker's
# checkpoint for the chunk the event reports); after them, optionally, the XACK of the command
# entry they end, and pointers: a key set to an event's entry id, with a lease dropped if its
# holder still holds it (a fetch other jobs may read from the log: worker sharing.py). What the
# events imply is on Redis with them or not at all.
# KEYS: seq, events, one hash per noted event, the acked stream if any, then per pointer its
#       key and its lease.
# ARGV: ttl, data field, event count, 4 per event (head, tail, note field or '', note value),
#       the ack's group and entry id ('' for none), the pointer count, then 3 per pointer
#       (the event's index from 1, ttl, lease holder).
_EMIT = """
local ttl, field, count = ARGV[1], ARGV[2], tonumber(ARGV[3])
local seqs, ids, key = {}, {}, 3
for i = 0, count - 1 do
  local at = 4 + 4 * i
  local seq = redis.call('INCR', KEYS[1])
  ids[#ids + 1] = redis.call('XADD', KEYS[2], '*', field, ARGV[at] .. seq .. ARGV[at + 1])
  seqs[#seqs + 1] = seq
  if ARGV[at + 2] ~= '' then
    redis.call('HSET', KEYS[key], ARGV[at + 2], ARGV[at + 3])
    redis.call('EXPIRE', KEYS[key], ttl)
    key = key + 1
  end
end
redis.call('EXPIRE', KEYS[1], ttl)
local ack = 4 + 4 * count
if ARGV[ack] ~= '' then
  redis.call('XACK', KEYS[key], ARGV[ack], ARGV[ack + 1])
  key = key + 1
end
for i = 0, tonumber(ARGV[ack + 2]) - 1 do
  local at = ack + 3 + 3 * i
  redis.call('SET', KEYS[key], ids[tonumber(ARGV[at])], 'EX', ARGV[at + 1])
  if redis.call('GET', KEYS[key + 1]) == ARGV[at + 2] then redis.call('DEL', KEYS[key + 1]) end
  key = key + 2
end
return seqs
"""
# The emit above, but only if a pin holds: the key KEYS[#KEYS - 1] is set to ARGV[#ARGV] unless
# it is set already, and the events go out only if it then holds that value and no checkpoint
# hash (KEYS[#KEYS]) exists. Else nothing is emitted and the reply is {'pinned', the key's value,
# the hash's fields and values}. A worker pins its plan with its start event this way, one round
# trip instead of two (see Pin). The extra keys and argument come last, so the emit's own
# positions stay as they are.
_PIN_FIRST = """
local pin, done, wanted = KEYS[#KEYS - 1], KEYS[#KEYS], ARGV[#ARGV]
redis.call('SET', pin, wanted, 'NX', 'EX', ARGV[1])
local pinned = redis.call('GET', pin)
if pinned ~= wanted or redis.call('EXISTS', done) == 1 then
  return {'pinned', pinned, redis.call('HGETALL', done)}
end
"""
_EMIT_PINNED = _PIN_FIRST + _EMIT
# A seq no job reaches, written into the body where the real one goes.
_SEQ_PLACEHOLDER = 987_654_321_987_654
_SEQ_TEXT = f'"seq":{_SEQ_PLACEHOLDER}'.encode()


class EventLog:
    def __init__(self, redis: Redis, names: Names, producer: str) -> None:
        self.redis = redis
        self.names = names
        self.producer = producer
        self._emit = redis.register_script(_EMIT)
        self._emit_pinned = redis.register_script(_EMIT_PINNED)

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
        (event,) = await self.emit_all(job_id, attempt, [Draft(event_type, fields, note)])
        return cast(E, event)

    async def emit_all(
        self,
        job_id: str,
        attempt: int,
        drafts: Sequence[Draft],
        ack: Ack | None = None,
        pin: Pin | None = None,
    ) -> list[JobEvent]:
        """Append the drafts' events, in order, with their notes and then `ack`, atomically in
        one round trip; returns the events as logged (seq included).

        `pin`: the events (and the ack) go out only if it holds (see Pin); else PinRefused."""
        events = self._events(job_id, attempt, drafts)
        call = self._script_call(events, job_id, drafts, ack)
        if call is None:
            if pin is not None:
                await self._pin_slowly(pin)
            return await self._emit_slowly(job_id, events, drafts, ack)
        keys, args = call
        if pin is None:
            seqs: Any = await self._emit(keys=keys, args=args)
        else:
            keys, args = _pinned(keys, args, pin)
            seqs = await self._emit_pinned(keys=keys, args=args)
            _raise_if_refused(seqs, [])
        return _sequenced(events, seqs)

    async def emit_all_then_read(
        self,
        job_id: str,
        attempt: int,
        drafts: Sequence[Draft],
        reads: Callable[[Pipeline], object],
        pin: Pin | None = None,
    ) -> tuple[list[JobEvent], list[Any]]:
        """`emit_all`, then the commands `reads` queues on a pipeline, in the same round trip:
        their replies (in queued order) see the events on the log. A reply may be the error
        its command met (the events are on the log all the same): the caller judges it. A
        worker's cancel check and its ask for the next chunk ride with a chunk's event.

        `pin`: the events go out only if it holds (see Pin); else PinRefused is raised, with
        the replies to `reads`, which ran all the same."""
        events = self._events(job_id, attempt, drafts)
        call = self._script_call(events, job_id, drafts, None)
        if call is None:
            if pin is not None:
                await self._pin_slowly(pin)
            logged = await self._emit_slowly(job_id, events, drafts, None)
            async with self.redis.pipeline(transaction=False) as pipe:
                reads(pipe)
                return logged, await pipe.execute(raise_on_error=False)
        keys, args = call
        script, source = (self._emit, _EMIT) if pin is None else (self._emit_pinned, _EMIT_PINNED)
        if pin is not None:
            keys, args = _pinned(keys, args, pin)
        for _ in range(2):
            # By digest, not through the Script object: a pipeline holding one asks Redis
            # whether it knows the script first, a round trip of its own on every execute.
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.evalsha(script.sha, len(keys), *keys, *args)
                reads(pipe)
                seqs, *replies = await pipe.execute(raise_on_error=False)
            if isinstance(seqs, NoScriptError):  # a restarted or flushed Redis: nothing ran
                script.sha = await self.redis.script_load(source)
                continue
            if isinstance(seqs, Exception):
                raise seqs
            _raise_if_refused(seqs, replies)
            return _sequenced(events, seqs), replies
        raise RuntimeError("Redis forgot the emit script as soon as it was loaded")

    async def _pin_slowly(self, pin: Pin) -> None:
        """The pin's check without the script (see `_emit_slowly`)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.set(pin.key, pin.value, nx=True, ex=JOB_KEY_TTL_S)
            pipe.get(pin.key)
            pipe.hgetall(pin.done_key)
            _, pinned, done = await pipe.execute()
        if pinned is None or text(pinned) != pin.value or done:
            raise PinRefused(pinned, done, [])

    def _events(self, job_id: str, attempt: int, drafts: Sequence[Draft]) -> list[JobEvent]:
        return [
            draft.event_type(
                job_id=job_id,
                attempt=attempt,
                seq=_SEQ_PLACEHOLDER,
                producer=self.producer,
                **draft.fields,
            )
            for draft in drafts
        ]

    def _script_call(
        self, events: list[JobEvent], job_id: str, drafts: Sequence[Draft], ack: Ack | None
    ) -> tuple[list[Any], list[Any]] | None:
        """The emit script's keys and arguments; None when a body hides its seq (never
        expected: the caller then takes the slower way, still correct)."""
        halves = []
        for event in events:
            body = event.model_dump_json().encode()
            # The envelope's seq is serialized before any field of the event's own (pydantic
            # keeps declaration order, and JobEvent declares it), and quotes inside strings are
            # escaped: the first match is the envelope's, whatever a user's options hold.
            head, found, tail = body.partition(_SEQ_TEXT)
            if not found:
                return None
            halves.append((head + b'"seq":', tail))
        keys: list[Any] = [self.names.job_key(job_id, "seq"), self.names.events]
        args: list[Any] = [JOB_KEY_TTL_S, DATA_FIELD, len(events)]
        for (head, tail), draft in zip(halves, drafts, strict=True):
            note = draft.note
            args += [head, tail, "", ""] if note is None else [head, tail, note.field, note.value]
            if note is not None:
                keys.append(note.key)
        if ack is None:
            args += ["", ""]
        else:
            keys.append(ack.stream)
            args += [ack.group, ack.entry_id]
        pointed = [(n, d.pointer) for n, d in enumerate(drafts, 1) if d.pointer is not None]
        args.append(len(pointed))
        for n, pointer in pointed:
            keys += [pointer.key, pointer.lease]
            args += [n, pointer.ttl_s, pointer.holder]
        return keys, args

    async def _emit_slowly(
        self, job_id: str, events: list[JobEvent], drafts: Sequence[Draft], ack: Ack | None
    ) -> list[JobEvent]:
        sequenced = [e.model_copy(update={"seq": await self.next_seq(job_id)}) for e in events]
        async with self.redis.pipeline(transaction=True) as pipe:
            for event, draft in zip(sequenced, drafts, strict=True):
                pipe.xadd(self.names.events, encode(event))
                if draft.note is not None:
                    pipe.hset(draft.note.key, draft.note.field, draft.note.value)
                    pipe.expire(draft.note.key, JOB_KEY_TTL_S)
            if ack is not None:
                pipe.xack(ack.stream, ack.group, ack.entry_id)
            replies = await pipe.execute()
        ids = [reply for reply in replies if isinstance(reply, bytes)]  # XADD's; the rest are ints
        pointed = [d.pointer for d in drafts]
        if not any(pointed):
            return sequenced
        async with self.redis.pipeline(transaction=False) as pipe:
            for entry_id, pointer in zip(ids, pointed, strict=True):
                if pointer is not None:  # its lease lapses on its own on this path
                    pipe.set(pointer.key, entry_id, ex=pointer.ttl_s)
            await pipe.execute()
        return sequenced


def _pinned(keys: list[Any], args: list[Any], pin: Pin) -> tuple[list[Any], list[Any]]:
    """The emit script's keys and arguments, for _EMIT_PINNED (its extras come last)."""
    return [*keys, pin.key, pin.done_key], [*args, pin.value]


def _raise_if_refused(reply: Any, replies: list[Any]) -> None:
    """PinRefused if _EMIT_PINNED answered that its pin did not hold (nothing went out)."""
    if reply and reply[0] == b"pinned":
        fields_and_values = reply[2]  # HGETALL inside a script: a flat list
        done = dict(zip(fields_and_values[::2], fields_and_values[1::2], strict=True))
        raise PinRefused(reply[1], done, replies)


def _sequenced(events: list[JobEvent], seqs: Any) -> list[JobEvent]:
    return [e.model_copy(update={"seq": int(s)}) for e, s in zip(events, seqs, strict=True)]


@dataclass(frozen=True, slots=True)
class Note:
    """A field of a hash, set together with an event (see `EventLog.emit`)."""

    key: str
    field: str  # never empty
    value: str | int

    def __post_init__(self) -> None:
        if not self.field:
            raise ValueError("a note's field must not be empty")


@dataclass(frozen=True, slots=True)
class Pointer:
    """`key` set to an event's entry id for `ttl_s` (readers take the event from the log, not a
    copy), and `lease` dropped if `holder` still holds it, together with the event."""

    key: str
    ttl_s: int
    lease: str
    holder: str


@dataclass(frozen=True, slots=True)
class Pin:
    """A value for `key`, set unless the key holds one, with events that go out only if it then
    holds this value and `done_key` (a job's checkpoints) does not exist.

    A worker pins a job's planned chunks so that every later delivery resumes the same ones
    (backfill_worker.stored); for a plan that needs no look at Redis first, it sets the pin
    with the start event. A pin set before (by another delivery) or chunks done already (this
    job is resumed) stop the start: PinRefused says what Redis holds, and the worker starts
    again from that.
    """

    key: str
    value: str
    done_key: str


class PinRefused(Exception):
    """A pin did not hold, and nothing was emitted: the key's value (None: unset, and still so
    after the SET only if it expired in between) and the checkpoint hash's fields and values;
    `replies`: to the reads that rode along (see `EventLog.emit_all_then_read`)."""

    def __init__(self, pinned: bytes | None, done: dict[bytes, bytes], replies: list[Any]) -> None:
        super().__init__("the pin is not this plan's, or the job has chunks done")
        self.pinned = pinned
        self.done = done
        self.replies = replies


@dataclass(frozen=True, slots=True)
class Draft:
    """An event for `EventLog.emit_all`: its type and fields, less those the log fills in."""

    event_type: type[JobEvent]
    fields: dict[str, Any]
    note: Note | None = None
    pointer: Pointer | None = None


@dataclass(frozen=True, slots=True)
class Ack:
    """A command entry acked together with the events that end its job."""

    stream: str
    group: str
    entry_id: str
