"""Runs one job: plan, announce, fetch chunk by chunk with retries, and end with a terminal event.

`run` says how the job left this worker: finished (its terminal event is on the log: ack the
command), handed back (the worker is stopping: another one resumes it) or lost (another worker
took the entry over: say nothing more). Chunks already collected, by an earlier delivery or an
earlier attempt, are skipped: a job resumes at its first unfinished chunk.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from functools import partial
from typing import Any, TypeVar, cast

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from backfill_bus import (
    EventLog,
    Names,
    Taken,
    cancel_key,
    reason_of,
    take_ownership,
)
from backfill_bus.event_log import Ack, Draft, Pin, PinRefused
from backfill_contracts import (
    ChunkCollected,
    ChunkFailed,
    ChunkSpec,
    CollectBars,
    JobCancelled,
    JobEvent,
    JobFailed,
    JobHandedBack,
    JobRetrying,
    JobStarted,
    JobSubmitted,
    JobSucceeded,
    JobWaiting,
    Outcome,
)
from backfill_worker.cancel_scanner import CancelScanner
from backfill_worker.checkpoints import Checkpoints
from backfill_worker.claims import Held
from backfill_worker.interrupts import (
    ClaimLostError,
    HandBackError,
    JobCancelledError,
    JobTimeLimitError,
)
from backfill_worker.metrics import WorkerMetrics
from backfill_worker.resilience import retry_on_disconnect
from backfill_worker.retry import RetryPolicy
from backfill_worker.sharing import Shared, SharedFetches, fetch_identity
from backfill_worker.source import Fetched, FetchRequest, Source, SourceError
from backfill_worker.stored import Narrowed, StoredData
from backfill_worker.waits import current_reporter

log = logging.getLogger(__name__)
E = TypeVar("E", bound=JobEvent)
T = TypeVar("T")
_WAITS = frozenset({Outcome.RATE_LIMITED, Outcome.PACING})
# The events that end a job on this worker, as the status the metrics count it under.
_ENDINGS: dict[type[JobEvent], str] = {
    JobSucceeded: "succeeded",
    JobFailed: "failed",
    JobCancelled: "cancelled",
    JobHandedBack: "handed_back",
}


class RunResult(Enum):
    FINISHED = "finished"
    ACKED = "acked"  # finished, and its command acked with the terminal event
    HANDED_BACK = "handed_back"
    LOST = "lost"


@dataclass(frozen=True, slots=True)
class Limits:
    job_time_limit_s: float = 3600.0
    request_timeout_s: float = 60.0
    poll_interval_s: float = 0.2
    # A wait for the source shorter than this is not worth an event in the job's history.
    announce_wait_s: float = 1.0


@dataclass(slots=True)
class _Run:
    job: CollectBars
    held: Held
    limit_s: float
    deadline: float  # time.monotonic() past which the job fails as a timeout
    ack: Ack | None = None  # the job's command, acked with its success

    @property
    def attempt(self) -> int:
        return self.job.attempt


class JobRunner:
    def __init__(
        self,
        source: Source,
        redis: Redis,
        names: Names,
        events: EventLog,
        worker_id: str,
        retry: RetryPolicy,
        cancels: CancelScanner,
        stopping: asyncio.Event,
        limits: Limits | None = None,
        metrics: WorkerMetrics | None = None,
        stored: StoredData | None = None,
        sharing: SharedFetches | None = None,
    ) -> None:
        self.source = source
        self.redis = redis
        self.names = names
        self.events = events
        self.worker_id = worker_id
        self.retry = retry
        self.cancels = cancels
        self.stopping = stopping
        self.limits = limits or Limits()
        self.metrics = metrics or WorkerMetrics(source.name)
        self.stored = stored or StoredData(None, redis, names)
        self.sharing = sharing or SharedFetches(redis, names, source.name)

    async def run(self, job: CollectBars, held: Held, ack: Ack | None = None) -> RunResult:
        """Run the job; `ack`: its command entry, acked in the same step as its success."""
        # The read model's answer for planning, asked while the job is taken, which needs Redis.
        ahead = self.stored.look_ahead(job, self.source)
        limit = job.time_limit_s or self.limits.job_time_limit_s
        taken = await self._take(job, limit)
        recorded_now = taken.marked
        if recorded_now:
            await self._record_submission(job)
        cancel_reason = await self._sync_cancels(job, taken)
        if not taken.owned:
            log.info("job %s was cancelled while queued; not starting it", job.job_id)
            if recorded_now:  # its canceller could not say so before the job was on the log
                reason = cancel_reason or "cancelled by request"
                await self._emit(JobCancelled, job, reason=reason)
            return RunResult.FINISHED
        run = self._start_clock(job, held, limit, taken.deadline, ack)
        try:
            # The cancel state as read with the take: no need to read it again.
            self._stop_if_asked(run, cancel_reason)
            nothing = partial(self.stored.without_planning, job, self.source)
            plan_or_none = await self._watched(run, nothing, None, None)
            if plan_or_none is None:
                plan = await self._watched(run, partial(self.source.plan, job), None, None)
                narrow = partial(self.stored.narrowed, job, plan, ahead)
                narrowed = await self._watched(run, narrow, None, None)
            else:
                narrowed = Narrowed(plan_or_none)
            try:
                collected = await self._collect(run, narrowed)
            except PinRefused as refused:  # pinned by an earlier delivery, maybe under way
                collected = await self._collect(run, self.stored.resumed(narrowed, refused))
            if collected:
                return RunResult.ACKED
        except SourceError as error:
            await self._emit(JobFailed, job, outcome=error.outcome, message=error.message)
        except JobCancelledError as cancelled:
            await self._emit(JobCancelled, job, reason=cancelled.reason)
        except JobTimeLimitError as timeout:
            await self._emit(JobFailed, job, outcome=Outcome.TIMEOUT, message=str(timeout))
        except HandBackError:
            await self._emit(JobHandedBack, job, worker_id=self.worker_id, reason="worker stopping")
            return RunResult.HANDED_BACK
        except ClaimLostError:
            self.metrics.job_finished("lost")
            return RunResult.LOST
        return RunResult.FINISHED

    def _start_clock(
        self, job: CollectBars, held: Held, limit: float, deadline: float | None, ack: Ack | None
    ) -> _Run:
        """The time limit runs from the attempt's first start, across reclaims and handbacks."""
        remaining = limit if deadline is None else deadline - time.time()
        return _Run(job, held, limit, time.monotonic() + remaining, ack)

    async def _take(self, job: CollectBars, limit: float) -> Taken:
        """Take the job, in one round trip: mark it submitted if it is unknown (a command
        published straight onto the stream has no submitted event yet; `marked` then says to
        record it), take ownership and the attempt's clock, and read the commands published
        since the cancel scanner's last look."""
        take = partial(
            take_ownership,
            self.redis,
            self.names,
            job.job_id,
            self.worker_id,
            attempt=job.attempt,
            deadline=time.time() + limit,
            mark_submitted=True,
            read=self.cancels.page_to_read(),
        )
        taken: Taken = await self._redis(take, "taking the job")
        return taken

    async def _sync_cancels(self, job: CollectBars, taken: Taken) -> str | None:
        """Apply the cancels published since the last look (read with the take); returns why
        the job is to be cancelled, if it is: the flag read with the take, or read again when
        those cancels were applied (this job's among them, maybe)."""
        return await self._applied_cancels(job.job_id, taken.page, taken.cancel_reason)

    async def _applied_cancels(self, job_id: str, page: Any, reason: str | None) -> str | None:
        """Apply the cancels on `page` (and after it); the job's cancel reason: `reason` as read
        with the page, or read again when cancels were applied (this job's among them, maybe)."""
        pages = [page]  # a retried sync reads afresh
        applied = await self._redis(
            lambda: self.cancels.sync(pages.pop() if pages else None), "reading cancels"
        )
        if not applied:
            return reason
        key = cancel_key(self.names, job_id)
        return reason_of(await self._redis(lambda: self.redis.get(key), "reading cancel flag"))

    async def _record_submission(self, job: CollectBars) -> None:
        await self._emit(
            JobSubmitted,
            job,
            ts=job.ts,
            **job.model_dump(
                include={
                    "source",
                    "symbol",
                    "bar_size",
                    "start",
                    "end",
                    "options",
                    "time_limit_s",
                    "mode",
                    "force",
                }
            ),
            idempotency_key=job.idempotency_key,
            correlation_id=job.correlation_id,
            universe=job.universe,
            universe_run=job.universe_run,
        )

    async def _collect(self, run: _Run, narrowed: Narrowed) -> bool:
        """Fetch the plan's chunks not done yet (the checkpoints: as read with the plan, if
        they were).

        True: the job succeeded, and its command was acked with that (see `run`). The last
        chunk's event goes out with the success, in one round trip. PinRefused: the plan's
        pin, set with the start event, did not hold; nothing was emitted (see Narrowed).
        """
        job, plan, read = run.job, narrowed.plan, narrowed.checkpoints
        checkpoints = Checkpoints(self.redis, self.names, job.job_id)
        done = await self._redis(lambda: checkpoints.done(plan.chunks, read), "reading checkpoints")
        started = Draft(
            JobStarted,
            {
                "worker_id": self.worker_id,
                "price_type": plan.price_type,
                "chunks": plan.chunks,
                "resumed_chunks": sorted(done),
                "instrument": plan.instrument,
                "skipped_chunks": plan.skipped,
            },
        )
        bars_total = sum(done.values())
        to_fetch = [chunk for chunk in plan.chunks if chunk.index not in done]
        # Each fetch's event goes out with the look before the next fetch (cancels, and the
        # next chunk's lease): the start with the first, one round trip between chunks.
        pending: list[Draft] = [started]
        pin = narrowed.pin  # set with the start, so only with the first chunk's look
        for chunk in to_fetch:
            identity = fetch_identity(job, plan, chunk)
            asked = await self._emit_and_check(run, pending, None if job.force else identity, pin)
            pin = None
            shared = await self._fetch_with_retries(run, chunk, identity, asked)
            if shared is None:
                return False  # the job failed; its terminal event is on the log
            fetched = shared.fetched
            bars = fetched.bars
            pending = [
                Draft(
                    ChunkCollected,
                    {
                        "chunk": chunk.index,
                        "source": job.source,
                        "symbol": plan.instrument or job.symbol,
                        "bar_size": job.bar_size,
                        "price_type": plan.price_type,
                        "bars": bars,
                        "actions": fetched.actions,
                        "exchange_tz": fetched.exchange_tz,
                        "shared_from": shared.fetched_by,
                    },
                    note=checkpoints.note(chunk, len(bars)),  # the checkpoint, with the event
                    pointer=shared.pointer,  # others needing this chunk now read it from the log
                )
            ]
            bars_total += len(bars)
        success = Draft(JobSucceeded, {"chunks": len(plan.chunks), "bars": bars_total})
        # No chunk to fetch: the plan's pin, if any, goes with the start and the success.
        await self._emit_all(job, [*pending, success], run.ack, pin)
        return run.ack is not None

    async def _fetch_with_retries(
        self, run: _Run, chunk: ChunkSpec, identity: str, asked: Any = None
    ) -> Shared | None:
        """The chunk's bars, or None once the job has failed (its failed event emitted).

        Rate limits and pacing waits do not use up tries: they say "later", not "broken", and
        the job's time limit bounds them.
        """
        job = run.job
        try_number = 0
        counted = 0
        while True:
            try_number += 1
            began = time.monotonic()
            try:
                request = FetchRequest(job, chunk, try_number)
                shared = await self._watched(
                    run,
                    partial(self._fetch_once, request, identity, asked),
                    chunk.index,
                    self.limits.request_timeout_s,
                )
                if shared.fetched_by is not None:
                    self.metrics.chunks_shared.inc()
                else:
                    outcome = "ok" if len(shared.fetched.bars) else Outcome.NO_DATA.value
                    self.metrics.chunk_fetched(outcome, time.monotonic() - began)
                return shared
            except SourceError as error:
                asked = None  # a lease taken by that look was dropped with the failed try
                self.metrics.chunk_fetched(error.outcome.value, time.monotonic() - began)
                if error.outcome not in _WAITS:
                    counted += 1
                will_retry = error.outcome.is_transient and counted < self.retry.max_tries
                await self._emit(
                    ChunkFailed,
                    job,
                    chunk=chunk.index,
                    outcome=error.outcome,
                    message=error.message,
                    will_retry=will_retry,
                )
                if not will_retry:
                    message = error.message
                    if error.outcome.is_transient:
                        message = f"{message} (gave up after {counted} tries)"
                    await self._emit(
                        JobFailed, job, outcome=error.outcome, message=message, chunk=chunk.index
                    )
                    return None
                delay = max(self.retry.delay_before(try_number + 1), error.retry_after_s or 0.0)
                await self._emit(
                    JobRetrying,
                    job,
                    chunk=chunk.index,
                    next_try=try_number + 1,
                    delay_s=round(delay, 3),
                    outcome=error.outcome,
                )
                await self._sleep(run, delay)

    async def _fetch_once(self, request: FetchRequest, identity: str, asked: Any) -> Shared:
        """One try: with jobs fetching the same chunk now, one request between them (`asked`:
        the sharing's first look, made with the event before)."""

        async def own() -> Fetched:
            result = await self.source.fetch(request)
            return result if isinstance(result, Fetched) else Fetched(result)

        if request.job.force:  # asked for fresh bars: not even a minute-old fetch will do
            return Shared(await own(), None)
        return await self.sharing.fetch(identity, request.job.job_id, own, asked)

    async def _watched(
        self,
        run: _Run,
        call: Callable[[], Awaitable[T]],
        chunk: int | None,
        request_timeout_s: float | None,
    ) -> T:
        """One call into the source, watched.

        A cancel, a stop or the time limit interrupt it within a poll; past `request_timeout_s`
        (not counting the waits it reports through `backfill_worker.waiting`) it fails as a
        timeout.
        """
        watch = _Watch(self, run.job, chunk, request_timeout_s)
        context = contextvars.copy_context()
        context.run(current_reporter.set, watch)
        task: asyncio.Task[T] = asyncio.create_task(_awaited(call), context=context)
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=watch.next_check(self.limits))
                if done:
                    return task.result()
                await self._check(run)
                if watch.expired():
                    raise SourceError(
                        Outcome.TIMEOUT, f"the request took longer than {request_timeout_s:g} s"
                    )
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await asyncio.wait_for(task, timeout=5)

    async def _sleep(self, run: _Run, delay: float) -> None:
        deadline = time.monotonic() + delay
        while (remaining := deadline - time.monotonic()) > 0:
            await asyncio.sleep(min(remaining, self.limits.poll_interval_s))
            await self._check(run)

    async def _check(self, run: _Run) -> None:
        """Raise the reason to stop now, if there is one (in order of precedence).

        The job's cancel flag and the cancels published since the last look are read in one
        round trip; the flag again only when those cancels were applied (this job's among
        them, maybe), so a cancel waiting on the stream still stops the job at this check.
        """
        self._stop_if_asked(run, None)

        async def read() -> tuple[Any, Any]:
            async with self.redis.pipeline(transaction=False) as pipe:
                taken = self._queue_cancel_reads(pipe, run.job.job_id)
                return taken(await pipe.execute())

        flag, page = await self._redis(read, "reading cancels")
        await self._stop_if_cancelled(run, flag, page)

    async def _emit_and_check(
        self, run: _Run, drafts: list[Draft], ask: str | None, pin: Pin | None = None
    ) -> Any:
        """`_emit_all`, then `_check`, in one round trip, with the sharing's first look for the
        fetch `ask` names (None: none) riding along too; returns that look's reply.

        `pin`: the drafts go out only if it holds; else PinRefused, and the look's lease (for a
        chunk the job may not fetch first, or at all) is let go."""
        job = run.job
        take_cancels: Callable[[list[Any]], tuple[Any, Any]] | None = None

        def reads(pipe: Pipeline) -> None:
            nonlocal take_cancels  # queued again by a retry
            take_cancels = self._queue_cancel_reads(pipe, job.job_id)
            if ask is not None:
                self.sharing.ask_on(pipe, ask, job.job_id)

        async def emit() -> list[Any]:
            _, replies = await self.events.emit_all_then_read(
                job.job_id, job.attempt, drafts, reads, pin
            )
            return replies

        try:
            replies = await retry_on_disconnect(emit, "emitting and reading cancels")
        except PinRefused as refused:
            if ask is not None:
                asked = refused.replies[-1] if refused.replies else None  # None: not asked
                await self.sharing.drop(ask, job.job_id, asked)
            raise
        self._count(drafts)
        asked = replies[-1] if ask is not None else None
        assert take_cancels is not None  # `reads` ran for the replies we have
        try:
            flag, page = take_cancels(replies)
            self._stop_if_asked(run, None)
            await self._stop_if_cancelled(run, flag, page)
        except BaseException:
            if ask is not None:  # the fetch will not be made: followers must not wait for it
                await self.sharing.drop(ask, job.job_id, asked)
            raise
        return asked

    def _queue_cancel_reads(
        self, pipe: Pipeline, job_id: str
    ) -> Callable[[list[Any]], tuple[Any, Any]]:
        """Queue the job's cancel flag and the next page of published cancels on `pipe`;
        returns how to take (flag, page) from the replies to what was queued from here on."""
        pipe.get(cancel_key(self.names, job_id))
        queued = self.cancels.read_on(pipe)

        def taken(replies: list[Any]) -> tuple[Any, Any]:
            flag, page = replies[0], replies[1] if queued else None
            for reply in (flag, page):
                if isinstance(reply, Exception):
                    raise reply  # as a read on its own would have
            return flag, page

        return taken

    async def _stop_if_cancelled(self, run: _Run, flag: Any, page: Any) -> None:
        self._stop_if_asked(run, await self._applied_cancels(run.job.job_id, page, reason_of(flag)))

    def _stop_if_asked(self, run: _Run, cancelled: str | None) -> None:
        """Raise the reason to stop now, given the cancel flag as read (in order of precedence)."""
        if run.held.lost:
            raise ClaimLostError
        if self.stopping.is_set():
            raise HandBackError
        if cancelled is not None:
            raise JobCancelledError(cancelled)
        if time.monotonic() >= run.deadline:
            raise JobTimeLimitError(run.limit_s)

    async def _emit(self, event_type: type[E], job: CollectBars, **fields: Any) -> E:
        (event,) = await self._emit_all(job, [Draft(event_type, fields)])
        return cast(E, event)

    async def _emit_all(
        self, job: CollectBars, drafts: list[Draft], ack: Ack | None = None, pin: Pin | None = None
    ) -> list[JobEvent]:
        async def emit() -> list[JobEvent]:
            return await self.events.emit_all(job.job_id, job.attempt, drafts, ack, pin)

        what = " and ".join(draft.event_type.__name__ for draft in drafts)
        events = await retry_on_disconnect(emit, f"emitting {what}")
        self._count(drafts)
        return events

    def _count(self, drafts: list[Draft]) -> None:
        for draft in drafts:
            if draft.event_type is JobStarted:
                self.metrics.jobs_started.inc()
            elif (status := _ENDINGS.get(draft.event_type)) is not None:
                self.metrics.job_finished(status)

    async def _redis(self, operation: Any, what: str) -> Any:
        return await retry_on_disconnect(operation, what)


async def _awaited(call: Callable[[], Awaitable[T]]) -> T:
    return await call()


class _Watch:
    """A watched call's request clock, and the waits its source reports (see waits.py).

    While the source waits, its request clock stops; the request's own time starts again when
    the wait ends. Waits long enough to matter become `JobWaiting` events, so the job shows them.
    """

    def __init__(
        self, runner: JobRunner, job: CollectBars, chunk: int | None, timeout: float | None
    ) -> None:
        self.runner = runner
        self.job = job
        self.chunk = chunk
        self.timeout = timeout
        self.give_up = math.inf if timeout is None else time.monotonic() + timeout
        self.waits = 0
        # The waits under way, innermost last: (outcome, when it began), for the metrics.
        self._begun: list[tuple[Outcome, float]] = []

    async def started(self, outcome: Outcome, message: str, until: float | None) -> None:
        self.waits += 1
        self._begun.append((outcome, time.monotonic()))
        announce = self.runner.limits.announce_wait_s
        if until is None or until - time.time() >= announce:
            await self.runner._emit(
                JobWaiting,
                self.job,
                chunk=self.chunk,
                outcome=outcome,
                message=message,
                until=None if until is None else datetime.fromtimestamp(until, UTC),
            )

    def ended(self) -> None:
        self.waits -= 1
        if self._begun:
            outcome, began = self._begun.pop()
            self.runner.metrics.waited(outcome.value, time.monotonic() - began)
        if self.timeout is not None:
            self.give_up = time.monotonic() + self.timeout

    def next_check(self, limits: Limits) -> float:
        if self.waits:
            return limits.poll_interval_s
        return max(0.0, min(limits.poll_interval_s, self.give_up - time.monotonic()))

    def expired(self) -> bool:
        return self.waits == 0 and time.monotonic() >= self.give_up
