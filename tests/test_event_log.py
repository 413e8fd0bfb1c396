"""Emitting job events: one seq per job shared by every producer, in log order, bodies exact."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from redis.asyncio import Redis

from backfill_bus import Names, body_of
from backfill_bus.event_log import Ack, Draft, EventLog, Note, Pin, PinRefused, Pointer
from backfill_contracts import BarSize, JobEvent, JobSubmitted, JobSucceeded, parse_event


async def logged(redis: Redis, names: Names) -> list[JobEvent]:
    entries: Any = await redis.xrange(names.events)
    events = [parse_event(body_of(fields)) for _, fields in entries]
    return [e for e in events if isinstance(e, JobEvent)]


async def read_command(redis: Redis, names: Names) -> Ack:
    """A sim command entry, read by a worker and not acked yet: what a job's end acks."""
    stream, group = names.command_stream("sim"), names.command_group("sim")
    await redis.xgroup_create(stream, group, id="0", mkstream=True)
    added: Any = await redis.xadd(stream, {"data": b"{}"})
    await redis.xreadgroup(group, "worker", {stream: ">"}, count=1)
    return Ack(stream, group, added.decode())


async def test_producers_share_a_jobs_seq_and_the_log_is_in_seq_order(
    redis: Redis, namespace: str
) -> None:
    names = Names(namespace)
    api, worker = EventLog(redis, names, "api"), EventLog(redis, names, "worker")

    emitted = await asyncio.gather(
        *(
            log.emit(JobSucceeded, job_id="job-1", attempt=1, chunks=n, bars=n)
            for n in range(20)
            for log in (api, worker)
        )
    )
    other = await worker.emit(JobSucceeded, job_id="job-2", attempt=1, chunks=0, bars=0)

    assert sorted(e.seq for e in emitted) == list(range(1, 41))
    assert other.seq == 1  # every job counts on its own
    events = await logged(redis, names)
    assert [e.seq for e in events if e.job_id == "job-1"] == list(range(1, 41))
    # What was returned is what was logged, seq included.
    assert {e.message_id: e for e in events} == {e.message_id: e for e in [*emitted, other]}
    ttl = await redis.ttl(names.job_key("job-1", "seq"))
    assert ttl > 86400


async def test_a_field_that_spells_the_seq_placeholder_still_logs_exactly(
    redis: Redis, namespace: str
) -> None:
    names = Names(namespace)
    log = EventLog(redis, names, "worker")
    await log.emit(JobSucceeded, job_id="job-1", attempt=1, chunks=1, bars=1)

    # A user's option named like the envelope field, holding the placeholder's very value.
    options = {"seq": 987_654_321_987_654, "note": "0.1 + 0.2 = 0.30000000000000004"}
    event = await log.emit(
        JobSubmitted,
        job_id="job-1",
        attempt=2,
        source="sim",
        symbol="AAPL",
        bar_size=BarSize.M1,
        start=datetime(2024, 1, 1, tzinfo=UTC),
        end=datetime(2024, 1, 2, tzinfo=UTC),
        options=options,
    )

    assert event.seq == 2
    assert isinstance(event, JobSubmitted)
    assert event.options == options
    assert (await logged(redis, names))[-1] == event


async def test_a_note_is_set_with_its_event_and_expires_with_the_jobs_keys(
    redis: Redis, namespace: str
) -> None:
    """A worker's checkpoint rides on its chunk's event: both are on Redis, or neither."""
    names = Names(namespace)
    log = EventLog(redis, names, "worker")
    key = names.job_key("job-1", "chunks_done")
    first = await log.emit(
        JobSucceeded, job_id="job-1", attempt=1, chunks=1, bars=390, note=Note(key, "0:1:2", 390)
    )
    second = await log.emit(
        JobSucceeded, job_id="job-1", attempt=1, chunks=2, bars=0, note=Note(key, "1:2:3", 0)
    )

    assert (first.seq, second.seq) == (1, 2)
    assert await redis.hgetall(key) == {b"0:1:2": b"390", b"1:2:3": b"0"}
    assert await redis.ttl(key) > 86400
    assert [e.message_id for e in await logged(redis, names)] == [
        first.message_id,
        second.message_id,
    ]


async def test_events_their_notes_and_the_commands_ack_go_out_together(
    redis: Redis, namespace: str
) -> None:
    """A job's last chunk, its success and the ack of its command: one step, in this order."""
    names = Names(namespace)
    log = EventLog(redis, names, "worker")
    ack = await read_command(redis, names)
    key = names.job_key("job-1", "chunks_done")
    await log.emit(JobSucceeded, job_id="job-1", attempt=1, chunks=0, bars=0)  # seq 1

    events = await log.emit_all(
        "job-1",
        1,
        [
            Draft(JobSucceeded, {"chunks": 1, "bars": 390}, Note(key, "0:1:2", 390)),
            Draft(JobSucceeded, {"chunks": 2, "bars": 0}),
            Draft(JobSucceeded, {"chunks": 3, "bars": 0}, Note(key, "2:3:4", 7)),
        ],
        ack,
    )

    assert [e.seq for e in events] == [2, 3, 4]
    assert [e.chunks for e in events if isinstance(e, JobSucceeded)] == [1, 2, 3]
    assert (await logged(redis, names))[-3:] == events
    assert await redis.hgetall(key) == {b"0:1:2": b"390", b"2:3:4": b"7"}
    pending: Any = await redis.xpending(ack.stream, ack.group)
    assert pending["pending"] == 0


async def test_reads_queued_after_the_events_see_them_in_the_same_round_trip(
    redis: Redis, namespace: str
) -> None:
    """A worker's cancel check rides with its chunk's event; a Redis that forgot the emit
    script (restarted, flushed) has it loaded again, with nothing logged twice."""
    names = Names(namespace)
    log = EventLog(redis, names, "worker")
    key = names.job_key("job-1", "chunks_done")
    await log.emit(JobSucceeded, job_id="job-1", attempt=1, chunks=0, bars=0)  # seq 1
    await redis.script_flush()

    events, replies = await log.emit_all_then_read(
        "job-1",
        1,
        [
            Draft(JobSucceeded, {"chunks": 1, "bars": 390}, Note(key, "0:1:2", 390)),
            Draft(JobSucceeded, {"chunks": 2, "bars": 0}),
        ],
        lambda pipe: (pipe.xlen(names.events), pipe.hgetall(key)),
    )

    assert [e.seq for e in events] == [2, 3]
    assert replies == [3, {b"0:1:2": b"390"}]
    assert (await logged(redis, names))[-2:] == events
    more, replies = await log.emit_all_then_read(
        "job-1",
        1,
        [Draft(JobSucceeded, {"chunks": 3, "bars": 0})],
        lambda pipe: pipe.xlen(names.events),
    )
    assert ([e.seq for e in more], replies) == ([4], [4])


async def test_without_an_ack_the_command_stays_pending(redis: Redis, namespace: str) -> None:
    names = Names(namespace)
    log = EventLog(redis, names, "worker")
    ack = await read_command(redis, names)

    (event,) = await log.emit_all("job-1", 1, [Draft(JobSucceeded, {"chunks": 1, "bars": 1})])

    assert event.seq == 1
    pending: Any = await redis.xpending(ack.stream, ack.group)
    assert pending["pending"] == 1


async def test_a_pointer_names_its_events_entry_and_drops_the_lease_its_holder_holds(
    redis: Redis, namespace: str
) -> None:
    """Fetch sharing's pointers go out with the events, after a note and an ack."""
    names = Names(namespace)
    log = EventLog(redis, names, "worker")
    ack = await read_command(redis, names)
    note = Note(names.job_key("job-1", "chunks_done"), "0:1:2", 390)
    mine, theirs = f"{namespace}lease:mine", f"{namespace}lease:theirs"
    await redis.set(mine, "job-1")
    await redis.set(theirs, "job-9")  # taken over by another job: not ours to drop

    await log.emit_all(
        "job-1",
        1,
        [
            Draft(
                JobSucceeded,
                {"chunks": 1, "bars": 1},
                note,
                Pointer(f"{namespace}p:a", 60, mine, "job-1"),
            ),
            Draft(JobSucceeded, {"chunks": 2, "bars": 2}),
            Draft(
                JobSucceeded,
                {"chunks": 3, "bars": 3},
                None,
                Pointer(f"{namespace}p:b", 5, theirs, "job-1"),
            ),
        ],
        ack,
    )

    entries: Any = await redis.xrange(names.events)
    first, _, third = (entry_id for entry_id, _ in entries[-3:])
    assert await redis.get(f"{namespace}p:a") == first
    assert await redis.get(f"{namespace}p:b") == third
    assert 55 < await redis.ttl(f"{namespace}p:a") <= 60
    assert 0 < await redis.ttl(f"{namespace}p:b") <= 5
    assert await redis.exists(mine) == 0
    assert await redis.get(theirs) == b"job-9"
    assert await redis.hgetall(note.key) == {b"0:1:2": b"390"}
    pending: Any = await redis.xpending(ack.stream, ack.group)
    assert pending["pending"] == 0
    await redis.delete(f"{namespace}p:a", f"{namespace}p:b", theirs)


async def test_the_slow_path_sets_pointers_too(
    redis: Redis, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the spliced seq (never expected) events still go out, and so do pointers."""
    names = Names(namespace)
    log = EventLog(redis, names, "worker")
    monkeypatch.setattr("backfill_bus.event_log._SEQ_TEXT", b"not in any body")

    events = await log.emit_all(
        "job-1",
        1,
        [
            Draft(JobSucceeded, {"chunks": 1, "bars": 1}),
            Draft(
                JobSucceeded,
                {"chunks": 2, "bars": 2},
                None,
                Pointer(f"{namespace}p:c", 60, "l", "job-1"),
            ),
        ],
    )

    assert [e.seq for e in events] == [1, 2]
    entries: Any = await redis.xrange(names.events)
    assert await redis.get(f"{namespace}p:c") == entries[-1][0]
    await redis.delete(f"{namespace}p:c")


@pytest.mark.parametrize("slow", [False, True], ids=["script", "slow path"])
async def test_events_with_a_pin_go_out_only_while_it_holds_and_no_chunk_is_done(
    redis: Redis, namespace: str, monkeypatch: pytest.MonkeyPatch, slow: bool
) -> None:
    """A worker's start sets its plan's pin: refused, it emits nothing and learns what Redis
    holds (the reads riding along still answer)."""
    names = Names(namespace)
    log = EventLog(redis, names, "worker")
    if slow:
        monkeypatch.setattr("backfill_bus.event_log._SEQ_TEXT", b"not in any body")
    key, done = f"{namespace}job-1:plan", f"{namespace}job-1:chunks_done"
    start = [Draft(JobSucceeded, {"chunks": 1, "bars": 0})]

    async def emit(value: str) -> tuple[list[JobEvent], list[Any]]:
        return await log.emit_all_then_read(
            "job-1", 1, start, lambda pipe: pipe.xlen(names.events), Pin(key, value, done)
        )

    await redis.script_flush()  # as after a Redis restart: the script loads itself again
    first, replies = await emit("[[1, 2]]")  # unset: set, and the events go out
    assert ([e.seq for e in first], replies) == ([1], [1])
    again, _ = await emit("[[1, 2]]")  # a retry of the same start: still holds
    assert [e.seq for e in again] == [2]
    with pytest.raises(PinRefused) as other:
        await emit("[[3, 4]]")
    assert (other.value.pinned, other.value.done) == (b"[[1, 2]]", {})
    await redis.hset(done, "0:1:2", 390)
    with pytest.raises(PinRefused) as resumed:
        await emit("[[1, 2]]")
    assert (resumed.value.pinned, resumed.value.done) == (b"[[1, 2]]", {b"0:1:2": b"390"})
    assert resumed.value.replies == ([] if slow else [2])  # the slow path pins before reading
    assert [e.seq for e in await logged(redis, names)] == [1, 2]
    assert await redis.ttl(key) > 86400


@pytest.mark.parametrize("slow", [False, True], ids=["script", "slow path"])
async def test_an_ending_with_a_pin_is_acked_only_while_it_holds(
    redis: Redis, namespace: str, monkeypatch: pytest.MonkeyPatch, slow: bool
) -> None:
    """A plan with no chunk pins itself with the start and the success, which end the job: a
    refused pin sends neither, and leaves the command pending for the plan that holds."""
    names = Names(namespace)
    log = EventLog(redis, names, "worker")
    if slow:
        monkeypatch.setattr("backfill_bus.event_log._SEQ_TEXT", b"not in any body")
    key, done = f"{namespace}job-1:plan", f"{namespace}job-1:chunks_done"
    ack = await read_command(redis, names)
    ending = [Draft(JobSucceeded, {"chunks": 0, "bars": 0})]
    await redis.set(key, "[[1, 2]]")  # another delivery pinned a plan of its own first

    with pytest.raises(PinRefused) as refused:
        await log.emit_all("job-1", 1, ending, ack, Pin(key, "[]", done))
    assert (refused.value.pinned, refused.value.done, refused.value.replies) == (
        b"[[1, 2]]",
        {},
        [],
    )
    pending: Any = await redis.xpending(ack.stream, ack.group)
    assert (await logged(redis, names), pending["pending"]) == ([], 1)

    (event,) = await log.emit_all("job-1", 1, ending, ack, Pin(key, "[[1, 2]]", done))
    pending = await redis.xpending(ack.stream, ack.group)
    assert (event.seq, pending["pending"]) == (1, 0)
    assert [e.seq for e in await logged(redis, names)] == [1]


def test_a_note_needs_a_field() -> None:
    with pytest.raises(ValueError, match="field"):
        Note("key", "", 1)
