"""Runs one job: plan, announce, fetch chunk by chunk with retries, and end with a terminal event.

`run` returns only once the job's terminal event is on the log; the caller acks the command then.
"""

from __future__ import annotations

import asyncio
import logging
import time

from redis.asyncio import Redis

from backfill_bus import EventLog, Names, cancel_reason, mark_submitted, take_ownership
from backfill_contracts import (
    BarBatch,
    ChunkCollected,
    ChunkFailed,
    ChunkSpec,
    CollectBars,
    JobCancelled,
    JobFailed,
    JobRetrying,
    JobStarted,
    JobSubmitted,
    JobSucceeded,
    Outcome,
)
from backfill_worker.cancel_scanner import CancelScanner
from backfill_worker.retry import RetryPolicy
from backfill_worker.source import FetchRequest, Plan, Source, SourceError

log = logging.getLogger(__name__)


class JobCancelledError(Exception):
    """Raised inside a running job when someone asked to cancel it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


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
        cancel_poll_interval_s: float = 0.2,
    ) -> None:
        self.source = source
        self.redis = redis
        self.names = names
        self.events = events
        self.worker_id = worker_id
        self.retry = retry
        self.cancels = cancels
        self.cancel_poll_interval_s = cancel_poll_interval_s

    async def run(self, job: CollectBars, attempt: int = 1) -> None:
        recorded_now = await self._record_submission_if_unknown(job)
        await self.cancels.sync()  # a cancel queued behind this job must stop it from starting
        if not await take_ownership(self.redis, self.names, job.job_id, self.worker_id):
            log.info("job %s was cancelled while queued; not starting it", job.job_id)
            if recorded_now:  # its canceller could not say so before the job was on the log
                reason = await cancel_reason(self.redis, self.names, job.job_id)
                await self.events.emit(
                    JobCancelled,
                    job_id=job.job_id,
                    attempt=attempt,
                    reason=reason or "cancelled by request",
                )
            return
        try:
            await self._check_cancel(job)
            plan = await self.source.plan(job)
        except JobCancelledError as cancelled:
            await self.events.emit(
                JobCancelled, job_id=job.job_id, attempt=attempt, reason=cancelled.reason
            )
            return
        except SourceError as error:
            await self._fail(job, attempt, error.outcome, error.message, chunk=None)
            return
        await self.events.emit(
            JobStarted,
            job_id=job.job_id,
            attempt=attempt,
            worker_id=self.worker_id,
            price_type=plan.price_type,
            chunks=plan.chunks,
        )
        await self._collect(job, attempt, plan)

    async def _record_submission_if_unknown(self, job: CollectBars) -> bool:
        """A command published straight onto the stream (no API) has no submitted event yet.

        Returns True when this call recorded it.
        """
        if not await mark_submitted(self.redis, self.names, job.job_id):
            return False
        await self.events.emit(
            JobSubmitted,
            job_id=job.job_id,
            attempt=1,
            ts=job.ts,
            **job.model_dump(include={"source", "symbol", "bar_size", "start", "end", "options"}),
            idempotency_key=job.idempotency_key,
        )
        return True

    async def _collect(self, job: CollectBars, attempt: int, plan: Plan) -> None:
        bars_total = 0
        try:
            for chunk in plan.chunks:
                await self._check_cancel(job)
                bars = await self._fetch_with_retries(job, attempt, chunk)
                if bars is None:
                    return  # the job failed; its terminal event is on the log
                bars_total += len(bars)
                await self.events.emit(
                    ChunkCollected,
                    job_id=job.job_id,
                    attempt=attempt,
                    chunk=chunk.index,
                    source=job.source,
                    symbol=job.symbol,
                    bar_size=job.bar_size,
                    price_type=plan.price_type,
                    bars=bars,
                )
        except JobCancelledError as cancelled:
            await self.events.emit(
                JobCancelled, job_id=job.job_id, attempt=attempt, reason=cancelled.reason
            )
            return
        await self.events.emit(
            JobSucceeded,
            job_id=job.job_id,
            attempt=attempt,
            chunks=len(plan.chunks),
            bars=bars_total,
        )

    async def _fetch_with_retries(
        self, job: CollectBars, attempt: int, chunk: ChunkSpec
    ) -> BarBatch | None:
        """The chunk's bars, or None once the job has failed (its failed event emitted)."""
        for try_number in range(1, self.retry.max_tries + 1):
            try:
                return await self.source.fetch(FetchRequest(job, chunk, try_number))
            except SourceError as error:
                will_retry = error.outcome.is_transient and try_number < self.retry.max_tries
                await self.events.emit(
                    ChunkFailed,
                    job_id=job.job_id,
                    attempt=attempt,
                    chunk=chunk.index,
                    outcome=error.outcome,
                    message=error.message,
                    will_retry=will_retry,
                )
                if not will_retry:
                    message = error.message
                    if error.outcome.is_transient:
                        message = f"{message} (gave up after {try_number} tries)"
                    await self._fail(job, attempt, error.outcome, message, chunk=chunk.index)
                    return None
                delay = self.retry.delay_before(try_number + 1)
                await self.events.emit(
                    JobRetrying,
                    job_id=job.job_id,
                    attempt=attempt,
                    chunk=chunk.index,
                    next_try=try_number + 1,
                    delay_s=round(delay, 3),
                    outcome=error.outcome,
                )
                await self._sleep_unless_cancelled(job, delay)
        raise AssertionError("unreachable: the last try either returns or fails the job")

    async def _fail(
        self, job: CollectBars, attempt: int, outcome: Outcome, message: str, chunk: int | None
    ) -> None:
        await self.events.emit(
            JobFailed,
            job_id=job.job_id,
            attempt=attempt,
            outcome=outcome,
            message=message,
            chunk=chunk,
        )

    async def _check_cancel(self, job: CollectBars) -> None:
        await self.cancels.sync()
        reason = await cancel_reason(self.redis, self.names, job.job_id)
        if reason is not None:
            raise JobCancelledError(reason)

    async def _sleep_unless_cancelled(self, job: CollectBars, delay: float) -> None:
        deadline = time.monotonic() + delay
        while (remaining := deadline - time.monotonic()) > 0:
            await asyncio.sleep(min(remaining, self.cancel_poll_interval_s))
            await self._check_cancel(job)
