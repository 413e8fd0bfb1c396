"""Worker heartbeats: on a timer and on every state change, so nobody waits on a silent worker."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

from backfill_bus import EventLog
from backfill_contracts import WorkerHeartbeat, utc_now

log = logging.getLogger(__name__)
WorkerState = Literal["starting", "idle", "busy", "stopping", "stopped"]
_Said = tuple[WorkerState, str | None]  # a state, and the job it is about


class Heartbeat:
    def __init__(
        self,
        events: EventLog,
        worker_id: str,
        source: str,
        interval_s: float,
        info: Callable[[], dict[str, Any]] | None = None,
        on_beat: Callable[[], None] | None = None,
        healthy: Callable[[], bool] | None = None,
        idle_after_s: float = 0.25,
    ) -> None:
        self.events = events
        self.worker_id = worker_id
        self.source = source
        self.interval_s = interval_s
        self.info = info
        self.on_beat = on_beat  # after each timed beat that reached Redis
        # Timed beats are skipped while this says no: a worker that cannot take work must not
        # look alive. State changes (`set`) are still announced.
        self.healthy = healthy
        self.idle_after_s = idle_after_s  # see idle_soon
        self.started_at: datetime = utc_now()
        self.state: WorkerState = "starting"
        self.current_job: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._announced: asyncio.Task[None] | None = None
        # Each state change counts one up; an idle beat waiting (idle_soon) sends only if none
        # came after it. Beats of state changes go out one at a time, in order, under the lock.
        self._changes = 0
        self._sending = asyncio.Lock()
        self._idle: asyncio.Task[None] | None = None

    async def set(self, state: WorkerState, current_job: str | None = None) -> None:
        self._changes += 1
        await self._settle()  # an announced beat goes out first: the log keeps their order
        self.state = state
        self.current_job = current_job
        async with self._sending:  # after an idle beat already under way
            await self.beat()

    def announce(
        self, state: WorkerState, current_job: str | None = None, after_s: float = 0.0
    ) -> None:
        """`set` without waiting for Redis, for a job's start, which need not wait on its beat.

        The beat goes out `after_s` from now and says this state, even if another was set
        since: the worker's CPU then goes to starting the job first (issue #9's A1-redis, command
        to `job.started`: 5.16 and 5.31 ms p50 with the beat at once, 4.65 and 4.71 ms with it
        20 ms later, A2 unchanged). The next `set` sends after it. A beat that fails is logged,
        not raised: the timed beats and the next state change say the same again.
        """
        self._changes += 1
        self.state = state
        self.current_job = current_job
        before = self._announced
        self._announced = asyncio.create_task(
            self._announce_later((state, current_job), after_s, before), name="heartbeat-announce"
        )

    async def _announce_later(
        self, said: _Said, after_s: float, before: asyncio.Task[None] | None
    ) -> None:
        if after_s > 0:
            await asyncio.sleep(after_s)
        if before is not None:
            await before  # announced earlier: on the log first (it raises nothing)
        await self._beat_quietly(said)

    def idle_soon(self) -> None:
        """Idle, said `idle_after_s` from now unless another state is set or announced first.

        A worker that takes its next job at once (a queue of jobs) never says idle in between:
        that was one more event on the log and in the projector per job, and a round trip
        before the next job could start (issue #9's A2: 107-112 jobs/s with it, 123-128
        without). A quarter second of "busy" too long is nothing to the console's reader.
        """
        self._changes += 1
        self.state = "idle"
        self.current_job = None
        self._idle = asyncio.create_task(self._idle_later(self._changes), name="heartbeat-idle")

    async def _idle_later(self, change: int) -> None:
        await asyncio.sleep(self.idle_after_s)
        await self._settle()
        if change == self._changes:
            await self._beat_quietly()

    async def _beat_quietly(self, said: _Said | None = None) -> None:
        try:
            async with self._sending:
                await self.beat(said)
        except Exception:
            state = said[0] if said is not None else self.state  # the state the beat said
            log.warning("heartbeat (%s) failed", state, exc_info=True)

    async def _settle(self) -> None:
        if self._announced is not None:
            await self._announced
            self._announced = None

    async def beat(self, said: _Said | None = None) -> None:
        """Append a heartbeat saying the current state and job, or `said`."""
        state, current_job = said or (self.state, self.current_job)
        await self.events.append(
            WorkerHeartbeat(
                producer=self.worker_id,
                worker_id=self.worker_id,
                source=self.source,
                host=socket.gethostname(),
                pid=os.getpid(),
                state=state,
                current_job=current_job,
                started_at=self.started_at,
                info=self.info() if self.info is not None else {},
            )
        )

    def start(self) -> None:
        self._stop.clear()
        self._task = asyncio.create_task(self._loop(), name=f"heartbeat-{self.worker_id}")

    async def stop(self) -> None:
        """Stop the timer, letting a beat in flight finish.

        Not task.cancel(): a redis-py command cancelled mid-flight was seen to never return,
        which hung the worker's shutdown.
        """
        self._stop.set()
        if self._task is not None:
            await self._task
            self._task = None
        await self._settle()
        if self._idle is not None and not self._sending.locked():
            self._idle.cancel()  # still asleep (no command in flight): the next set says more
        if self._idle is not None:
            await asyncio.gather(self._idle, return_exceptions=True)
            self._idle = None

    async def _loop(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=self.interval_s)
                return
            if self.healthy is not None and not self.healthy():
                continue
            try:
                await self.beat()
            except Exception:  # a missed beat must not kill the worker; the next one may pass
                log.warning("heartbeat failed", exc_info=True)
            else:
                if self.on_beat is not None:
                    self.on_beat()
