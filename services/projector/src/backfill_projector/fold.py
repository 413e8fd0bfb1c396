"""The fold: how each event changes the projections. Pure: no I/O, no clock.

A cleanup request ends a batch of changes (`Changes.cleanup_before`): the rows folded before it
are written, then the store deletes what it names, and the events after it fold into fresh
changes, in log order, however the log was cut into batches. A cleanup depends on the tables as
they stand at its place in the log, so it is folded once: the committed position skips it on
redelivery, and a rebuild starts from empty tables (bars aside, which it never deletes).

Replaying an event already folded changes nothing: a terminal job ignores events of its own
attempt or earlier (only a new attempt reopens it), chunk counts move by differences, and bars
and job events are written by key.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from backfill_contracts import (
    AnyEvent,
    AnyJobEvent,
    ChunkCollected,
    ChunkFailed,
    CleanupRequested,
    JobCancelled,
    JobFailed,
    JobHandedBack,
    JobRetrying,
    JobStarted,
    JobSubmitted,
    JobSucceeded,
    JobWaiting,
    Outcome,
    WorkerHeartbeat,
)
from backfill_projector.rows import BarBlock, Changes, ChunkRow, JobRow

# Envelope fields live in their own columns; the rest of an event is its `data`.
_ENVELOPE = {"v", "message_id", "ts", "producer", "type", "job_id", "attempt", "seq"}


def fold(changes: Changes, event_id: str, event: AnyEvent) -> None:
    if isinstance(event, WorkerHeartbeat):
        _fold_heartbeat(changes, event)
        return
    if isinstance(event, CleanupRequested):
        # It ends the batch: the projector writes what was folded, deletes, then goes on.
        changes.cleanup_before = event.finished_before
        return
    changes.job_events.append(_job_event_row(event_id, event))
    if isinstance(event, ChunkCollected):
        changes.bars.append(_bar_block(event))
        changes.actions.extend(_action_rows(event))
    if isinstance(event, JobSubmitted):
        _fold_submitted(changes, event)
        return
    job = changes.jobs.get(event.job_id)
    if job is None or event.attempt < job.attempt:
        return  # an event of an unknown job or an older attempt: kept in the history only
    if job.is_terminal and event.attempt == job.attempt and not _is_chunk_event(event):
        return  # the job already ended; a replayed or late event must not reopen it
    job.updated_at = max(job.updated_at, event.ts)
    job.last_seq = max(job.last_seq, event.seq)
    changes.dirty_jobs.add(job.job_id)
    _fold_job_event(changes, job, event)


def _is_chunk_event(event: AnyJobEvent) -> bool:
    return isinstance(event, ChunkCollected | ChunkFailed)


def _fold_job_event(changes: Changes, job: JobRow, event: AnyJobEvent) -> None:
    if isinstance(event, JobStarted):
        _fold_started(changes, job, event)
    elif isinstance(event, ChunkCollected):
        chunk = _chunk(changes, job.job_id, event.chunk, event.seq)
        if chunk is None:
            return
        if not chunk.is_finished:
            job.chunks_done += 1
        job.bars_stored += len(event.bars) - chunk.bars
        chunk.bars = len(event.bars)
        chunk.status = "no_data" if event.no_data else "done"
        chunk.tries += 1
        chunk.outcome = Outcome.NO_DATA.value if event.no_data else None
        chunk.message = None
        job.note = None
        _set_running(job)
    elif isinstance(event, ChunkFailed):
        chunk = _chunk(changes, job.job_id, event.chunk, event.seq)
        if chunk is None or chunk.is_finished:
            return
        chunk.status = "retrying" if event.will_retry else "failed"
        chunk.tries += 1
        chunk.outcome = event.outcome.value
        chunk.message = event.message
        job.note = None
    elif isinstance(event, JobWaiting):
        _fold_waiting(changes, job, event)
    elif isinstance(event, JobRetrying):
        if not job.is_terminal:
            job.status = "retrying"
    elif isinstance(event, JobHandedBack):
        if not job.is_terminal:
            job.status = "queued"  # waiting for the next worker, which resumes it
    elif isinstance(event, JobSucceeded):
        _finish(job, "succeeded", event.ts)
    elif isinstance(event, JobFailed):
        _finish(job, "failed", event.ts)
        job.error_outcome = event.outcome.value
        job.error_message = event.message
    elif isinstance(event, JobCancelled):
        _finish(job, "cancelled", event.ts)
        job.error_outcome = Outcome.CANCELLED.value
        job.error_message = event.reason


def _fold_submitted(changes: Changes, event: JobSubmitted) -> None:
    job = changes.jobs.get(event.job_id)
    if job is not None:
        if event.attempt > job.attempt:  # retried after it failed or was cancelled
            job.attempt = event.attempt
            job.status = "queued"
            job.error_outcome = job.error_message = None
            job.finished_at = None
            job.correlation_id = event.correlation_id
            job.updated_at = max(job.updated_at, event.ts)
            job.last_seq = max(job.last_seq, event.seq)
            changes.dirty_jobs.add(job.job_id)
        return  # otherwise replayed, or submitted twice by a retried publish: the first stands
    changes.jobs[event.job_id] = JobRow(
        job_id=event.job_id,
        source=event.source,
        symbol=event.symbol,
        bar_size=event.bar_size.value,
        start=event.start,
        end=event.end,
        options=event.options,
        idempotency_key=event.idempotency_key,
        status="queued",
        attempt=event.attempt,
        submitted_at=event.ts,
        updated_at=event.ts,
        last_seq=event.seq,
        correlation_id=event.correlation_id,
        universe=event.universe,
        universe_run=event.universe_run,
    )
    changes.dirty_jobs.add(event.job_id)


def _fold_started(changes: Changes, job: JobRow, event: JobStarted) -> None:
    job.attempt = event.attempt
    job.status = "running"
    job.worker_id = event.worker_id
    job.price_type = event.price_type
    job.started_at = event.ts
    job.finished_at = None
    job.error_outcome = None
    job.error_message = None
    job.instrument = event.instrument
    job.note = None
    job.chunks_total = len(event.chunks)
    job.chunks_done = 0
    job.bars_stored = 0
    for spec in event.chunks:
        key = (job.job_id, spec.index)
        chunk = changes.chunks.get(key)
        same_window = chunk is not None and (chunk.start, chunk.end) == (spec.start, spec.end)
        if chunk is None or not same_window:
            chunk = ChunkRow(job.job_id, spec.index, spec.start, spec.end, last_seq=event.seq)
            changes.chunks[key] = chunk
        elif not chunk.is_finished and chunk.last_seq < event.seq:
            chunk.status = "planned"  # a new attempt tries it again; a replay leaves it be
            chunk.last_seq = event.seq
        if chunk.is_finished:  # a resumed job keeps what it already collected
            job.chunks_done += 1
            job.bars_stored += chunk.bars
        changes.dirty_chunks.add(key)


def _chunk(changes: Changes, job_id: str, index: int, seq: int) -> ChunkRow | None:
    """The chunk an event is about, or None when unknown or the event was already folded."""
    key = (job_id, index)
    chunk = changes.chunks.get(key)
    if chunk is None or seq <= chunk.last_seq:
        return None
    chunk.last_seq = seq
    changes.dirty_chunks.add(key)
    return chunk


def _set_running(job: JobRow) -> None:
    if not job.is_terminal:
        job.status = "running"


def _finish(job: JobRow, status: str, ts: datetime) -> None:
    job.status = status
    job.finished_at = ts
    job.note = None


def _fold_waiting(changes: Changes, job: JobRow, event: JobWaiting) -> None:
    """The job waits on its source; the chunk it waits for shows it too (not a failure)."""
    job.note = event.message
    if event.chunk is None:
        return
    chunk = _chunk(changes, job.job_id, event.chunk, event.seq)
    if chunk is None or chunk.is_finished:
        return
    chunk.status = "waiting"
    chunk.outcome = event.outcome.value
    chunk.message = event.message


def _job_event_row(event_id: str, event: AnyJobEvent) -> dict[str, Any]:
    if isinstance(event, ChunkCollected):
        # The bars live in their own table: not dumped only to be dropped (a 390-bar chunk's
        # dump was most of the projector's model_dump time in issue #9's A3 profile).
        data = event.model_dump(mode="json", exclude=_ENVELOPE | {"bars"})
        data["bars"] = len(event.bars)
    else:
        data = event.model_dump(mode="json", exclude=_ENVELOPE)
    return {
        "event_id": event_id,
        "job_id": event.job_id,
        "seq": event.seq,
        "attempt": event.attempt,
        "type": event.type,
        "ts": event.ts,
        "producer": event.producer,
        "data": data,
    }


def _bar_block(event: ChunkCollected) -> BarBlock:
    return BarBlock(
        source=event.source,
        symbol=event.symbol,
        bar_size=event.bar_size.value,
        price_type=event.price_type,
        bars=event.bars,
    )


def _action_rows(event: ChunkCollected) -> list[dict[str, Any]]:
    return [
        {
            "source": event.source,
            "symbol": event.symbol,
            "ts": datetime.fromtimestamp(action.ts, UTC),
            "kind": action.kind,
            "value": action.value,
        }
        for action in event.actions
    ]


def _fold_heartbeat(changes: Changes, beat: WorkerHeartbeat) -> None:
    previous = changes.workers.get(beat.worker_id)
    if previous is not None and previous["last_heartbeat"] > beat.ts:
        return
    changes.workers[beat.worker_id] = {
        "worker_id": beat.worker_id,
        "source": beat.source,
        "host": beat.host,
        "pid": beat.pid,
        "state": beat.state,
        "current_job": beat.current_job,
        "started_at": beat.started_at,
        "last_heartbeat": beat.ts,
        "info": beat.info,
    }
