"""How a page follows the log: woken by the tail, it re-reads the projections it shows.

The tail calls `_note` from its own task; the page's handler then runs in a task of the
page's client (so what it changes is pushed over that page's websocket) at once, not on a
polling tick. `JobWatch` re-reads the named jobs until the projector has folded the event
that was heard (it may lag the log by a few milliseconds), so a page never settles on a row
older than the event that woke it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from nicegui import background_tasks, ui
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from backfill_readmodel import monitoring
from backfill_readmodel.views import JobView
from backfill_ui.live import RESYNC, EventTail, LiveEvent

log = logging.getLogger(__name__)

# Events closer together than this are handled in one go: a busy log costs a page at most
# 1 / MIN_GAP_S reads a second, and a lone event is shown at once.
MIN_GAP_S = 0.02
# While a handler waits for the projector to catch up, it is called again after this, doubling.
RETRY_FIRST_S = 0.01
RETRY_MAX_S = 0.5
# An event that never moves the job's position (of an older attempt, say): read it anyway.
CATCH_UP_LIMIT_S = 3.0

# Returns True to be called again soon, new events or not: it waits for the projection to
# catch up with an event it heard.
Handler = Callable[[list[LiveEvent]], Awaitable[bool]]


class Feed:
    """The events of interest to one page, handed to its handler as they come, in batches."""

    def __init__(
        self,
        tail: EventTail,
        handler: Handler,
        *,
        accept: Callable[[LiveEvent], bool] | None = None,
    ) -> None:
        self._pending: list[LiveEvent] = []
        self._handler = handler
        self._accept = accept
        self._client = ui.context.client
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()  # a new event ends a retry wait at once
        self._last_run = 0.0
        self._failing = False
        unsubscribe = tail.subscribe(self._note)
        self._client.on_delete(unsubscribe)

    def _note(self, event: LiveEvent) -> None:
        if event.type == RESYNC or self._accept is None or self._accept(event):
            self._pending.append(event)
            self._wake.set()
            if self._task is None or self._task.done():
                self._task = background_tasks.create(
                    self._drain(), name="console-live-feed", context=self._client
                )

    async def _drain(self) -> None:
        """Hand over what came in until nothing is left and nothing is awaited."""
        retry = RETRY_FIRST_S
        while not self._client.is_deleted:
            wait = self._last_run + MIN_GAP_S - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            batch = self._pending.copy()
            self._pending.clear()
            self._wake.clear()
            self._last_run = time.monotonic()
            again = await self._handle(batch)
            if self._pending:
                retry = RETRY_FIRST_S
                continue
            if not again:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), retry)
            retry = RETRY_FIRST_S if self._pending else min(retry * 2, RETRY_MAX_S)

    async def _handle(self, batch: list[LiveEvent]) -> bool:
        try:
            again = await self._handler(batch)
        except (SQLAlchemyError, RedisError, OSError) as error:
            # The database or Redis is away: the page stays as it is and tries again.
            if not self._failing:
                log.warning("live update failed (%s); retrying", type(error).__name__)
            self._failing = True
            return True
        self._failing = False
        return again


def tolerant(read: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
    """For a timer's refresh: an outage leaves the page as it is (one warning), not a traceback
    every few seconds; the next tick tries again."""
    failing = False

    async def run() -> None:
        nonlocal failing
        try:
            await read()
        except (SQLAlchemyError, RedisError, OSError) as error:
            if not failing:
                log.warning("a page refresh failed (%s); retrying", type(error).__name__)
            failing = True
        else:
            failing = False

    return run


@dataclass
class JobWatch:
    """Jobs to re-read, each with the seq the projection must have reached first."""

    wanted: dict[str, tuple[int, float]] = field(default_factory=dict)

    def note(self, job_id: str, seq: int) -> None:
        previous = self.wanted.get(job_id)
        since = previous[1] if previous else time.monotonic()
        self.wanted[job_id] = (max(seq, previous[0] if previous else 0), since)

    def note_events(self, events: Iterable[LiveEvent], keep: Callable[[str], bool]) -> None:
        for event in events:
            if event.job_id is not None and keep(event.job_id):
                self.note(event.job_id, event.seq)

    def __bool__(self) -> bool:
        return bool(self.wanted)

    async def read(self, conn: AsyncConnection) -> dict[str, JobView]:
        """The jobs whose projection caught up (or waited long enough); the rest wait on."""
        if not self.wanted:
            return {}
        tracked = await monitoring.jobs_by_id(conn, self.wanted)
        ready: dict[str, JobView] = {}
        now = time.monotonic()
        for job_id, (seq, since) in list(self.wanted.items()):
            found = tracked.get(job_id)
            caught_up = found is not None and found.last_seq >= seq
            late = now - since > CATCH_UP_LIMIT_S
            if found is not None and (caught_up or late):
                ready[job_id] = found.view
            if caught_up or late:
                del self.wanted[job_id]
        return ready
