"""The pure fold of events into rows: no database, no clock, exact values."""

from __future__ import annotations

import copy
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

from backfill_contracts import (
    AnyJobEvent,
    BarBatch,
    BarSize,
    ChunkCollected,
    ChunkFailed,
    ChunkSpec,
    CleanupRequested,
    JobCancelled,
    JobFailed,
    JobRetrying,
    JobStarted,
    JobSubmitted,
    JobSucceeded,
    JobWaiting,
    Outcome,
    WorkerHeartbeat,
)
from backfill_projector.fold import fold
from backfill_projector.rows import Changes, JobRow

JOB = "job-1"
T0 = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
DAY = [datetime(2024, 1, d, tzinfo=UTC) for d in (1, 2, 3, 4)]
SPECS = [ChunkSpec(index=i, start=DAY[i], end=DAY[i + 1]) for i in range(3)]
EPOCH_JAN_1 = 1704067200  # 2024-01-01T00:00:00Z
EPOCH_JAN_2 = 1704153600  # 2024-01-02T00:00:00Z


def at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


def bars(*ts: int) -> BarBatch:
    return BarBatch(
        ts=list(ts),
        open=[float(i + 1) for i in range(len(ts))],
        high=[float(i + 2) for i in range(len(ts))],
        low=[float(i) for i in range(len(ts))],
        close=[float(i + 1.5) for i in range(len(ts))],
        volume=[float(100 * (i + 1)) for i in range(len(ts))],
    )


def submitted(job_id: str = JOB, seq: int = 1) -> JobSubmitted:
    return JobSubmitted(
        job_id=job_id,
        seq=seq,
        ts=at(seq),
        producer="api@host",
        source="sim",
        symbol="AAPL",
        bar_size=BarSize.M1,
        start=DAY[0],
        end=DAY[3],
        options={"latency_ms": 0, "fail_every": 0},
        idempotency_key="key-1",
        correlation_id="order-7",
    )


def started(
    seq: int, attempt: int = 1, specs: list[ChunkSpec] | None = None, worker: str = "w-1"
) -> JobStarted:
    return JobStarted(
        job_id=JOB,
        attempt=attempt,
        seq=seq,
        ts=at(seq),
        producer=worker,
        worker_id=worker,
        price_type="trades",
        chunks=SPECS if specs is None else specs,
    )


def collected(seq: int, chunk: int, batch: BarBatch, attempt: int = 1) -> ChunkCollected:
    return ChunkCollected(
        job_id=JOB,
        attempt=attempt,
        seq=seq,
        ts=at(seq),
        producer="w-1",
        chunk=chunk,
        source="sim",
        symbol="AAPL",
        bar_size=BarSize.M1,
        price_type="trades",
        bars=batch,
    )


def chunk_failed(seq: int, chunk: int, will_retry: bool, attempt: int = 1) -> ChunkFailed:
    return ChunkFailed(
        job_id=JOB,
        attempt=attempt,
        seq=seq,
        ts=at(seq),
        producer="w-1",
        chunk=chunk,
        outcome=Outcome.UPSTREAM_ERROR,
        message="upstream said 502",
        will_retry=will_retry,
    )


def succeeded(seq: int, n_chunks: int, n_bars: int, attempt: int = 1) -> JobSucceeded:
    return JobSucceeded(
        job_id=JOB, attempt=attempt, seq=seq, ts=at(seq), producer="w-1",
        chunks=n_chunks, bars=n_bars,
    )  # fmt: skip


def job_failed(seq: int, attempt: int = 1) -> JobFailed:
    return JobFailed(
        job_id=JOB, attempt=attempt, seq=seq, ts=at(seq), producer="w-1",
        outcome=Outcome.GATEWAY_DOWN, message="gateway went away", chunk=1,
    )  # fmt: skip


def retrying(seq: int, attempt: int = 1) -> JobRetrying:
    return JobRetrying(
        job_id=JOB, attempt=attempt, seq=seq, ts=at(seq), producer="w-1",
        chunk=1, next_try=2, delay_s=0.5, outcome=Outcome.UPSTREAM_ERROR,
    )  # fmt: skip


HAPPY: list[AnyJobEvent] = [
    submitted(),
    started(2),
    collected(3, 0, bars(EPOCH_JAN_1, EPOCH_JAN_1 + 60)),
    collected(4, 1, BarBatch()),
    collected(5, 2, bars(EPOCH_JAN_2 + 120, EPOCH_JAN_2 + 180, EPOCH_JAN_2 + 240)),
    succeeded(6, 3, 5),
]


def run(events: list[AnyJobEvent], changes: Changes | None = None) -> Changes:
    changes = changes if changes is not None else Changes()
    for i, event in enumerate(events):
        fold(changes, f"{1000 + event.seq}-{i}", event)
    return changes


def job_of(changes: Changes) -> JobRow:
    return changes.jobs[JOB]


def chunk_rows(changes: Changes) -> list[tuple[int, str, int, int, str | None, str | None]]:
    return [
        (c.chunk, c.status, c.bars, c.tries, c.outcome, c.message)
        for _, c in sorted(changes.chunks.items())
    ]


def snapshot(changes: Changes) -> dict[str, Any]:
    """The rows the store upserts by their current value, not the appended history."""
    return {
        "jobs": {k: asdict(v) for k, v in changes.jobs.items()},
        "chunks": {k: asdict(v) for k, v in changes.chunks.items()},
        "workers": copy.deepcopy(changes.workers),
        "dirty_jobs": set(changes.dirty_jobs),
        "dirty_chunks": set(changes.dirty_chunks),
    }


# --- the whole life of a job ------------------------------------------------------------------


def test_a_job_from_submitted_to_succeeded() -> None:
    changes = run(HAPPY)

    assert asdict(job_of(changes)) == {
        "job_id": JOB,
        "source": "sim",
        "symbol": "AAPL",
        "bar_size": "1m",
        "start": DAY[0],
        "end": DAY[3],
        "options": {"latency_ms": 0, "fail_every": 0},
        "idempotency_key": "key-1",
        "status": "succeeded",
        "attempt": 1,
        "submitted_at": at(1),
        "updated_at": at(6),
        "last_seq": 6,
        "price_type": "trades",
        "worker_id": "w-1",
        "chunks_total": 3,
        "chunks_done": 3,
        "bars_stored": 5,
        "error_outcome": None,
        "error_message": None,
        "started_at": at(2),
        "finished_at": at(6),
        "instrument": None,
        "note": None,
        "correlation_id": "order-7",  # the request's, for the lines logged about the job
        "universe": None,  # not fanned out by a universe run
        "universe_run": None,
    }
    assert chunk_rows(changes) == [
        (0, "done", 2, 1, None, None),
        (1, "no_data", 0, 1, "no_data", None),
        (2, "done", 3, 1, None, None),
    ]
    assert [(c.start, c.end) for _, c in sorted(changes.chunks.items())] == [
        (DAY[0], DAY[1]),
        (DAY[1], DAY[2]),
        (DAY[2], DAY[3]),
    ]
    assert changes.dirty_jobs == {JOB}
    assert changes.dirty_chunks == {(JOB, 0), (JOB, 1), (JOB, 2)}
    assert changes.workers == {}


def test_bar_rows() -> None:
    changes = run(HAPPY)
    key = {"source": "sim", "symbol": "AAPL", "bar_size": "1m", "price_type": "trades"}
    assert [row for block in changes.bars for row in block.rows()] == [
        {**key, "ts": datetime(2024, 1, 1, 0, 0, tzinfo=UTC),
         "open": 1.0, "high": 2.0, "low": 0.0, "close": 1.5, "volume": 100.0, "adj_close": None},
        {**key, "ts": datetime(2024, 1, 1, 0, 1, tzinfo=UTC),
         "open": 2.0, "high": 3.0, "low": 1.0, "close": 2.5, "volume": 200.0, "adj_close": None},
        {**key, "ts": datetime(2024, 1, 2, 0, 2, tzinfo=UTC),
         "open": 1.0, "high": 2.0, "low": 0.0, "close": 1.5, "volume": 100.0, "adj_close": None},
        {**key, "ts": datetime(2024, 1, 2, 0, 3, tzinfo=UTC),
         "open": 2.0, "high": 3.0, "low": 1.0, "close": 2.5, "volume": 200.0, "adj_close": None},
        {**key, "ts": datetime(2024, 1, 2, 0, 4, tzinfo=UTC),
         "open": 3.0, "high": 4.0, "low": 2.0, "close": 3.5, "volume": 300.0, "adj_close": None},
    ]  # fmt: skip
    assert all(row["ts"].tzinfo is UTC for block in changes.bars for row in block.rows())


def test_job_event_rows() -> None:
    changes = run(HAPPY)
    common = {"job_id": JOB, "attempt": 1}
    chunk_common: dict[str, object] = {
        "source": "sim",
        "symbol": "AAPL",
        "bar_size": "1m",
        "price_type": "trades",
        "actions": [],
        "exchange_tz": None,
        "shared_from": None,
    }
    assert changes.job_events == [
        {
            **common, "event_id": "1001-0", "seq": 1, "type": "job.submitted", "ts": at(1),
            "producer": "api@host",
            "data": {
                "source": "sim", "symbol": "AAPL", "bar_size": "1m",
                "start": "2024-01-01T00:00:00Z", "end": "2024-01-04T00:00:00Z",
                "options": {"latency_ms": 0, "fail_every": 0}, "idempotency_key": "key-1",
                "time_limit_s": None,
                "correlation_id": "order-7", "mode": "full", "force": False,
                "universe": None, "universe_run": None,
            },
        },
        {
            **common, "event_id": "1002-1", "seq": 2, "type": "job.started", "ts": at(2),
            "producer": "w-1",
            "data": {
                "worker_id": "w-1", "price_type": "trades",
                "chunks": [
                    {"index": 0, "start": "2024-01-01T00:00:00Z", "end": "2024-01-02T00:00:00Z"},
                    {"index": 1, "start": "2024-01-02T00:00:00Z", "end": "2024-01-03T00:00:00Z"},
                    {"index": 2, "start": "2024-01-03T00:00:00Z", "end": "2024-01-04T00:00:00Z"},
                ],
                "resumed_chunks": [],
                "instrument": None,
                "skipped_chunks": 0,
            },
        },
        {
            **common, "event_id": "1003-2", "seq": 3, "type": "chunk.collected", "ts": at(3),
            "producer": "w-1", "data": {**chunk_common, "chunk": 0, "bars": 2},
        },
        {
            **common, "event_id": "1004-3", "seq": 4, "type": "chunk.collected", "ts": at(4),
            "producer": "w-1", "data": {**chunk_common, "chunk": 1, "bars": 0},
        },
        {
            **common, "event_id": "1005-4", "seq": 5, "type": "chunk.collected", "ts": at(5),
            "producer": "w-1", "data": {**chunk_common, "chunk": 2, "bars": 3},
        },
        {
            **common, "event_id": "1006-5", "seq": 6, "type": "job.succeeded", "ts": at(6),
            "producer": "w-1", "data": {"chunks": 3, "bars": 5},
        },
    ]  # fmt: skip


def test_the_job_status_along_the_way() -> None:
    changes = Changes()
    statuses = []
    for i, event in enumerate(HAPPY):
        fold(changes, f"{i}-0", event)
        job = job_of(changes)
        statuses.append((job.status, job.chunks_done, job.bars_stored))
    assert statuses == [
        ("queued", 0, 0),
        ("running", 0, 0),
        ("running", 1, 2),
        ("running", 2, 2),
        ("running", 3, 5),
        ("succeeded", 3, 5),
    ]


# --- replays ----------------------------------------------------------------------------------


def test_folding_the_same_events_twice_changes_nothing() -> None:
    changes = run(HAPPY)
    before = snapshot(changes)
    events_before, bars_before = len(changes.job_events), len(changes.bars)

    run(HAPPY, changes)

    assert snapshot(changes) == before
    # The history and the bars are appended again, but the store writes them by key.
    assert len(changes.job_events) == 2 * events_before
    assert changes.job_events[events_before:] == changes.job_events[:events_before]
    assert len(changes.bars) == 2 * bars_before
    assert changes.bars[bars_before:] == changes.bars[:bars_before]


def test_a_replayed_chunk_collected_keeps_the_counts() -> None:
    changes = run(HAPPY)
    run([HAPPY[2], HAPPY[4]], changes)
    job = job_of(changes)
    assert (job.status, job.chunks_done, job.bars_stored) == ("succeeded", 3, 5)
    assert [(c.status, c.bars) for _, c in sorted(changes.chunks.items())] == [
        ("done", 2),
        ("no_data", 0),
        ("done", 3),
    ]


def test_a_replayed_chunk_failed_is_not_another_try() -> None:
    events: list[AnyJobEvent] = [submitted(), started(2), chunk_failed(3, 1, will_retry=True)]
    changes = run(events)
    before = snapshot(changes)
    run(events, changes)
    assert snapshot(changes) == before
    assert chunk_rows(changes)[1] == (1, "retrying", 0, 1, "upstream_error", "upstream said 502")
    assert job_of(changes).status == "running"


def test_a_replay_in_the_middle_of_a_job_changes_nothing() -> None:
    events = HAPPY[:4]
    changes = run(events)
    before = snapshot(changes)
    run(events, changes)
    assert snapshot(changes) == before
    job = job_of(changes)
    assert (job.status, job.chunks_done, job.bars_stored, job.last_seq) == ("running", 2, 2, 4)


def test_submitted_twice_keeps_the_first() -> None:
    first = submitted()
    second = submitted(seq=9).model_copy(update={"symbol": "MSFT"})
    changes = run([first, second])
    job = job_of(changes)
    assert (job.symbol, job.submitted_at, job.last_seq, job.status) == ("AAPL", at(1), 1, "queued")
    assert [row["seq"] for row in changes.job_events] == [1, 9]


# --- retries, failures, cancellation ----------------------------------------------------------


def test_a_chunk_that_fails_then_succeeds() -> None:
    changes = run([submitted(), started(2), chunk_failed(3, 1, will_retry=True)])
    assert chunk_rows(changes)[1] == (1, "retrying", 0, 1, "upstream_error", "upstream said 502")

    run([retrying(4)], changes)
    assert job_of(changes).status == "retrying"

    run([collected(5, 1, bars(EPOCH_JAN_2))], changes)
    assert chunk_rows(changes) == [
        (0, "planned", 0, 0, None, None),
        (1, "done", 1, 2, None, None),
        (2, "planned", 0, 0, None, None),
    ]
    job = job_of(changes)
    assert (job.status, job.chunks_done, job.bars_stored, job.last_seq) == ("running", 1, 1, 5)


def test_a_chunk_failed_after_it_was_collected_is_ignored() -> None:
    changes = run([submitted(), started(2), collected(3, 0, bars(EPOCH_JAN_1))])
    run([chunk_failed(4, 0, will_retry=False)], changes)
    assert chunk_rows(changes)[0] == (0, "done", 1, 1, None, None)


def test_a_chunk_failed_for_good() -> None:
    changes = run([submitted(), started(2), chunk_failed(3, 2, will_retry=False)])
    assert chunk_rows(changes)[2] == (2, "failed", 0, 1, "upstream_error", "upstream said 502")


def test_job_failed() -> None:
    changes = run([submitted(), started(2), chunk_failed(3, 1, will_retry=False), job_failed(4)])
    job = job_of(changes)
    assert (job.status, job.error_outcome, job.error_message) == (
        "failed",
        "gateway_down",
        "gateway went away",
    )
    assert (job.finished_at, job.updated_at, job.last_seq) == (at(4), at(4), 4)
    assert changes.job_events[-1]["data"] == {
        "outcome": "gateway_down",
        "message": "gateway went away",
        "chunk": 1,
    }


def test_cancelled_while_queued() -> None:
    cancel = JobCancelled(job_id=JOB, seq=2, ts=at(2), producer="api@host", reason="operator")
    changes = run([submitted(), cancel])
    job = job_of(changes)
    assert (job.status, job.error_outcome, job.error_message, job.finished_at) == (
        "cancelled",
        "cancelled",
        "operator",
        at(2),
    )
    assert (job.started_at, job.chunks_total) == (None, 0)


def test_cancelled_while_running_keeps_the_progress() -> None:
    cancel = JobCancelled(job_id=JOB, seq=4, ts=at(4), producer="w-1")
    changes = run([submitted(), started(2), collected(3, 0, bars(EPOCH_JAN_1)), cancel])
    job = job_of(changes)
    assert (job.status, job.chunks_done, job.bars_stored, job.error_outcome) == (
        "cancelled",
        1,
        1,
        "cancelled",
    )
    assert job.error_message == "cancelled by request"
    assert job.finished_at == at(4)


# --- ordering: unknown jobs, older attempts, late events ---------------------------------------


def test_an_event_of_an_unknown_job_only_adds_history() -> None:
    changes = run([started(2), collected(3, 0, bars(EPOCH_JAN_1)), succeeded(4, 1, 1)])
    assert changes.jobs == {}
    assert changes.chunks == {}
    assert changes.dirty_jobs == set()
    assert changes.dirty_chunks == set()
    assert [(row["type"], row["seq"]) for row in changes.job_events] == [
        ("job.started", 2),
        ("chunk.collected", 3),
        ("job.succeeded", 4),
    ]
    # The bars themselves are still facts worth keeping.
    assert [row["ts"] for block in changes.bars for row in block.rows()] == [
        datetime(2024, 1, 1, tzinfo=UTC)
    ]


def test_an_older_attempt_does_not_change_the_job() -> None:
    changes = run([submitted(), started(2), started(3, attempt=2, worker="w-2")])
    before = snapshot(changes)

    run(
        [
            collected(4, 0, bars(EPOCH_JAN_1), attempt=1),
            chunk_failed(5, 1, will_retry=True, attempt=1),
            retrying(6, attempt=1),
            job_failed(7, attempt=1),
            succeeded(8, 3, 1, attempt=1),
        ],
        changes,
    )

    assert snapshot(changes) == before
    job = job_of(changes)
    assert (job.status, job.attempt, job.worker_id, job.last_seq) == ("running", 2, "w-2", 3)
    assert len(changes.job_events) == 8


def test_a_late_retrying_does_not_reopen_a_succeeded_job() -> None:
    changes = run(HAPPY)
    before = snapshot(changes)
    run([retrying(7)], changes)
    assert snapshot(changes) == before
    job = job_of(changes)
    assert (job.status, job.finished_at, job.last_seq) == ("succeeded", at(6), 6)
    assert changes.job_events[-1]["type"] == "job.retrying"


def test_a_late_job_failed_does_not_override_success() -> None:
    changes = run(HAPPY)
    run([job_failed(7)], changes)
    job = job_of(changes)
    assert (job.status, job.error_outcome, job.error_message) == ("succeeded", None, None)


def test_a_new_attempt_resumes_a_failed_job() -> None:
    changes = run(
        [
            submitted(),
            started(2),
            collected(3, 0, bars(EPOCH_JAN_1, EPOCH_JAN_1 + 60)),
            collected(4, 1, BarBatch()),
            chunk_failed(5, 2, will_retry=False),
            job_failed(6),
        ]
    )
    assert job_of(changes).status == "failed"

    run([started(7, attempt=2, worker="w-2")], changes)
    job = job_of(changes)
    assert (job.status, job.attempt, job.worker_id, job.started_at, job.finished_at) == (
        "running",
        2,
        "w-2",
        at(7),
        None,
    )
    assert (job.error_outcome, job.error_message) == (None, None)
    assert (job.chunks_total, job.chunks_done, job.bars_stored) == (3, 2, 2)
    assert chunk_rows(changes) == [
        (0, "done", 2, 1, None, None),
        (1, "no_data", 0, 1, "no_data", None),
        (2, "planned", 0, 1, "upstream_error", "upstream said 502"),
    ]

    run([collected(8, 2, bars(EPOCH_JAN_2), attempt=2), succeeded(9, 3, 3, attempt=2)], changes)
    job = job_of(changes)
    assert (job.status, job.chunks_done, job.bars_stored, job.finished_at) == (
        "succeeded",
        3,
        3,
        at(9),
    )
    assert chunk_rows(changes)[2] == (2, "done", 1, 2, None, None)


def test_a_new_attempt_with_a_different_plan_starts_over() -> None:
    changes = run([submitted(), started(2), collected(3, 0, bars(EPOCH_JAN_1)), job_failed(4)])
    halves = [
        ChunkSpec(index=0, start=DAY[0], end=DAY[0] + timedelta(hours=12)),
        ChunkSpec(index=1, start=DAY[0] + timedelta(hours=12), end=DAY[3]),
    ]
    run([started(5, attempt=2, specs=halves)], changes)
    job = job_of(changes)
    assert (job.status, job.chunks_total, job.chunks_done, job.bars_stored) == ("running", 2, 0, 0)
    assert [
        (c.chunk, c.start, c.end, c.status, c.bars, c.tries)
        for _, c in sorted(changes.chunks.items())
    ] == [
        (0, DAY[0], DAY[0] + timedelta(hours=12), "planned", 0, 0),
        (1, DAY[0] + timedelta(hours=12), DAY[3], "planned", 0, 0),
        (2, DAY[2], DAY[3], "planned", 0, 0),  # left from the old plan, not counted
    ]


# --- heartbeats -------------------------------------------------------------------------------


def heartbeat(ts: datetime, state: str, job: str | None = None) -> WorkerHeartbeat:
    return WorkerHeartbeat(
        ts=ts,
        producer="w-1",
        worker_id="w-1",
        source="sim",
        host="box",
        pid=42,
        state=state,
        current_job=job,
        started_at=T0,
        info={"version": "0.1.0"},
    )


def worker_row(ts: datetime, state: str, job: str | None) -> dict[str, Any]:
    return {
        "worker_id": "w-1",
        "source": "sim",
        "host": "box",
        "pid": 42,
        "state": state,
        "current_job": job,
        "started_at": T0,
        "last_heartbeat": ts,
        "info": {"version": "0.1.0"},
    }


def test_heartbeats_upsert_the_worker() -> None:
    changes = Changes()
    fold(changes, "1-0", heartbeat(at(1), "idle"))
    assert changes.workers == {"w-1": worker_row(at(1), "idle", None)}
    fold(changes, "2-0", heartbeat(at(2), "busy", JOB))
    assert changes.workers == {"w-1": worker_row(at(2), "busy", JOB)}
    assert changes.job_events == []
    assert changes.jobs == {}
    assert changes.dirty_jobs == set()


def test_an_older_heartbeat_does_not_overwrite_a_newer_one() -> None:
    changes = Changes()
    fold(changes, "1-0", heartbeat(at(10), "busy", JOB))
    fold(changes, "2-0", heartbeat(at(5), "idle"))
    assert changes.workers == {"w-1": worker_row(at(10), "busy", JOB)}


def test_heartbeats_of_two_workers() -> None:
    changes = Changes()
    fold(changes, "1-0", heartbeat(at(1), "idle"))
    other = heartbeat(at(2), "starting").model_copy(update={"worker_id": "w-2", "pid": 43})
    fold(changes, "2-0", other)
    assert sorted(changes.workers) == ["w-1", "w-2"]
    assert changes.workers["w-2"]["pid"] == 43
    assert changes.workers["w-2"]["state"] == "starting"


# --- maintenance ------------------------------------------------------------------------------


def test_a_cleanup_request_ends_the_batch_and_changes_no_row() -> None:
    changes = run(HAPPY)
    before = snapshot(changes)
    events_before = list(changes.job_events)
    cleanup = CleanupRequested(finished_before=at(100), requested_by="test", ts=at(101))
    fold(changes, "2000-0", cleanup)
    # The store deletes when it writes the batch; the fold only records what to delete.
    assert changes.cleanup_before == at(100)
    assert snapshot(changes) == before
    assert changes.job_events == events_before


# --- waiting on the source -------------------------------------------------------------------


def waiting(seq: int, chunk: int | None, message: str) -> JobWaiting:
    return JobWaiting(
        job_id=JOB, seq=seq, ts=at(seq), producer="w-1", chunk=chunk,
        outcome=Outcome.PACING, message=message, until=at(seq + 42),
    )  # fmt: skip


def test_a_wait_shows_on_the_job_and_its_chunk_until_the_chunk_comes_back() -> None:
    changes = run([submitted(), started(2), waiting(3, 0, "waiting for pacing, next slot in 42 s")])

    job = job_of(changes)
    assert (job.status, job.note) == ("running", "waiting for pacing, next slot in 42 s")
    assert chunk_rows(changes)[0] == (
        0, "waiting", 0, 0, "pacing", "waiting for pacing, next slot in 42 s"
    )  # fmt: skip

    run([collected(4, 0, bars(EPOCH_JAN_1))], changes)
    assert job_of(changes).note is None
    assert chunk_rows(changes)[0] == (0, "done", 1, 1, None, None)


def test_a_wait_while_planning_names_no_chunk_and_a_start_clears_it() -> None:
    changes = run([submitted(), waiting(2, None, "waiting for the IB Gateway (1100)")])
    assert job_of(changes).note == "waiting for the IB Gateway (1100)"
    assert changes.chunks == {}

    run([started(3)], changes)
    assert job_of(changes).note is None


def test_a_late_wait_never_reopens_an_ended_job_nor_a_done_chunk() -> None:
    changes = run([*HAPPY, waiting(7, 2, "waiting for pacing")])
    assert (job_of(changes).status, job_of(changes).note) == ("succeeded", None)
    assert chunk_rows(changes)[2][1] == "done"


def test_an_instrument_from_the_start_is_kept_on_the_job() -> None:
    start = started(2).model_copy(update={"instrument": "ESH5"})
    assert job_of(run([submitted(), start])).instrument == "ESH5"
