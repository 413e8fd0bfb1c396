"""The event tail: every event reaches the pages' listeners, through a Redis restart too."""

from __future__ import annotations

import asyncio
from pathlib import Path

from redis.asyncio import Redis

from backfill_bus import EventLog, Names, encode
from backfill_contracts import JobCancelled, Message
from backfill_ui.feed import JobWatch
from backfill_ui.live import RESYNC, EventTail, LiveEvent, decode
from services.ui.tests.console import beat, eventually
from tests.support.servers import RedisServer


def fields(message: Message) -> dict[bytes, bytes]:
    """As XREAD returns an entry: bytes keys and values."""
    return {str(key).encode(): bytes(value) for key, value in encode(message).items()}  # type: ignore[arg-type]


def test_decode_reads_only_what_pages_route_on() -> None:
    event = decode(fields(JobCancelled(job_id="j-1", seq=7, reason="x")))
    assert event is not None
    assert (event.type, event.job_id, event.seq) == ("job.cancelled", "j-1", 7)
    heartbeat = decode(fields(beat("w-1", "sim", {})))
    assert heartbeat is not None
    assert heartbeat.type == "worker.heartbeat"
    assert (heartbeat.worker_id, heartbeat.job_id) == ("w-1", None)
    assert decode({b"__data__": b"not json"}) is None
    assert decode({b"__data__": b"[1, 2]"}) is None
    assert decode({b"other": b"x"}) is None  # flat fields without a type


def test_a_job_watch_waits_for_the_newest_seq() -> None:
    watch = JobWatch()
    watch.note("a", 3)
    watch.note("a", 5)
    watch.note("a", 4)
    assert watch.wanted["a"][0] == 5
    assert watch


async def test_the_tail_fans_out_and_survives_a_redis_restart(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis")
    server.start()
    redis = Redis.from_url(server.url)
    names = Names("live:")
    tail = EventTail(redis, names, block_ms=100)
    heard: list[LiveEvent] = []
    unsubscribe = tail.subscribe(heard.append)
    try:
        await redis.xadd(names.events, encode(JobCancelled(job_id="before", seq=1)))
        tail.start()
        await asyncio.wait_for(tail.connected.wait(), 5)
        log = EventLog(redis, names, "test")
        await log.emit(JobCancelled, job_id="j-1", attempt=1)
        await redis.xadd(names.events, {b"__data__": b"junk"})  # skipped, the tail goes on
        await log.emit(JobCancelled, job_id="j-2", attempt=1)
        await eventually(lambda: _types(heard, ["job.cancelled", "job.cancelled"]), within=5)
        assert [event.job_id for event in heard] == ["j-1", "j-2"]  # only what came after start

        server.kill(9)  # Redis dies, and comes back on the same port
        await eventually(lambda: _disconnected(tail), within=5)
        server.start()
        await eventually(lambda: _types(heard[2:], [RESYNC]), within=10, what="a resync")
        writer = Redis.from_url(server.url)  # the old client's pooled connections died
        await EventLog(writer, names, "test").emit(JobCancelled, job_id="j-3", attempt=1)
        await writer.aclose()
        await eventually(lambda: _types(heard[3:], ["job.cancelled"]), within=5)
        assert heard[3].job_id == "j-3"
        unsubscribe()
        assert tail.listeners == 0
    finally:
        await tail.stop()
        await redis.aclose()
        server.stop()


def _types(events: list[LiveEvent], wanted: list[str]) -> None:
    assert [event.type for event in events] == wanted, events


def _disconnected(tail: EventTail) -> None:
    assert not tail.connected.is_set()
