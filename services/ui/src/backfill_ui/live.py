"""Live push: one tail of the `events` stream per console process, fanned out to open pages.

The tail reads with a plain XREAD (no consumer group: it must not take events from the
projector, and a console that stops leaves nothing pending). It only says *what* changed;
pages then re-read the projections, which stay the single source of truth, so a page shows
the same after a reload, a reconnect or a console restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from backfill_bus import Names, body_of

log = logging.getLogger(__name__)

RESYNC = "console.resync"  # not on the log: the tail missed events, pages re-read everything
MAX_BACKOFF_S = 5.0


@dataclass(frozen=True, slots=True)
class LiveEvent:
    type: str
    job_id: str | None = None
    seq: int = 0
    worker_id: str | None = None
    received: float = 0.0  # time.monotonic() when the tail read it


Listener = Callable[[LiveEvent], None]


def decode(fields: dict[bytes, bytes]) -> LiveEvent | None:
    """The few fields pages route on; None for an entry that is not a message.

    Not validated into the full model: a chunk's bars can be large and pages never use them.
    """
    try:
        body: Any = json.loads(body_of(fields))
    except ValueError:
        return None
    if not isinstance(body, dict) or not isinstance(body.get("type"), str):
        return None
    seq = body.get("seq")
    job_id, worker_id = body.get("job_id"), body.get("worker_id")
    return LiveEvent(
        type=body["type"],
        job_id=job_id if isinstance(job_id, str) else None,
        seq=seq if isinstance(seq, int) else 0,
        worker_id=worker_id if isinstance(worker_id, str) else None,
        received=time.monotonic(),
    )


class EventTail:
    # Short blocks: stopping waits for the read in flight (an idle read costs Redis nothing).
    def __init__(self, redis: Redis, names: Names, *, block_ms: int = 250) -> None:
        self.redis = redis
        self.names = names
        self.block_ms = block_ms
        self._listeners: set[Listener] = set()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()  # set while reading; tests wait on it

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call `listener` for every event from now on; returns the unsubscribe function.

        Listeners run in the tail's task: they must only note what changed, never await.
        """
        self._listeners.add(listener)
        return lambda: self._listeners.discard(listener)

    @property
    def listeners(self) -> int:
        return len(self._listeners)

    def start(self) -> None:
        self._stop.clear()
        self._task = asyncio.create_task(self._run(), name="console-event-tail")

    async def stop(self) -> None:
        """Ends within one block (not task.cancel(): a cancelled redis-py read may never return)."""
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._task), self.block_ms / 1000 + 2)
            if not self._task.done():
                self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        last_id = "$"
        delay = 0.0
        while not self._stop.is_set():
            try:
                if last_id == "$":
                    # Pin the position now, so nothing appended between two reads is missed.
                    last_id = await self._tip()
                answer: Any = await self.redis.xread(
                    {self.names.events: last_id}, block=self.block_ms, count=500
                )
            except (RedisError, OSError) as error:
                delay = min(MAX_BACKOFF_S, delay * 2 or 0.25)
                if self.connected.is_set():
                    log.warning("event tail lost Redis (%s); retrying", type(error).__name__)
                self.connected.clear()
                last_id = "$"  # Redis may have restarted without its data: start from the tip
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), delay)
                continue
            if not self.connected.is_set():
                if delay:  # back after an outage: events may have been missed
                    log.info("event tail reconnected")
                    self._publish(LiveEvent(RESYNC, received=time.monotonic()))
                self.connected.set()
                delay = 0.0
            for _stream, entries in answer or ():
                for entry_id, fields in entries:
                    last_id = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
                    event = decode(fields)
                    if event is not None:
                        self._publish(event)

    async def _tip(self) -> str:
        entries: Any = await self.redis.xrevrange(self.names.events, count=1)
        if not entries:
            return "0-0"
        entry_id = entries[0][0]
        return str(entry_id.decode() if isinstance(entry_id, bytes) else entry_id)

    def _publish(self, event: LiveEvent) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:  # one broken page must not stop the tail for the others
                log.exception("a live listener failed")
