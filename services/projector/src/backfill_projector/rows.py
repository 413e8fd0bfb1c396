"""In-memory rows the fold works on; one dataclass per projection table."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from backfill_contracts import BarBatch

TERMINAL_STATUSES = frozenset({"succeeded", "failed", "cancelled"})
FINISHED_CHUNK_STATUSES = frozenset({"done", "no_data"})


@dataclass(slots=True, frozen=True)
class BarBlock:
    """One chunk's bars as its event carries them, in columns, with the series they belong to.

    The store hands PostgreSQL the columns as arrays, so folding a chunk builds no Python object
    per bar: per-bar tuples or dicts were most of the projector's time in issue #9's profile.
    """

    source: str
    symbol: str
    bar_size: str
    price_type: str
    bars: BarBatch

    def rows(self) -> list[dict[str, Any]]:
        """One dict per bar (the SQLite path, and tests)."""
        b = self.bars
        adj_close = b.adj_close if b.adj_close is not None else [None] * len(b)
        return [
            {
                "source": self.source,
                "symbol": self.symbol,
                "bar_size": self.bar_size,
                "price_type": self.price_type,
                "ts": datetime.fromtimestamp(ts, UTC),
                "open": o,
                "high": h,
                "low": lo,
                "close": c,
                "volume": v,
                "adj_close": a,
            }
            for ts, o, h, lo, c, v, a in zip(
                b.ts, b.open, b.high, b.low, b.close, b.volume, adj_close, strict=True
            )
        ]


@dataclass(slots=True)
class JobRow:
    job_id: str
    source: str
    symbol: str
    bar_size: str
    start: datetime
    end: datetime
    options: dict[str, Any]
    idempotency_key: str | None
    status: str
    attempt: int
    submitted_at: datetime
    updated_at: datetime
    last_seq: int
    price_type: str | None = None
    worker_id: str | None = None
    chunks_total: int = 0
    chunks_done: int = 0
    bars_stored: int = 0
    error_outcome: str | None = None
    error_message: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    instrument: str | None = None
    note: str | None = None  # what the job waits for while it waits (pacing, a gateway)
    correlation_id: str | None = None  # the latest attempt's request
    universe: str | None = None  # the universe run that fanned the job out, if one did
    universe_run: str | None = None

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


@dataclass(slots=True)
class ChunkRow:
    job_id: str
    chunk: int
    start: datetime
    end: datetime
    status: str = "planned"
    bars: int = 0
    tries: int = 0
    outcome: str | None = None
    message: str | None = None
    # The seq of the last event folded into this chunk: chunk events come from the one worker
    # running the job, in order, so an event at or below it was already folded (a replay).
    last_seq: int = 0

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED_CHUNK_STATUSES


@dataclass(slots=True)
class Changes:
    """Everything one batch of events does to the tables."""

    jobs: dict[str, JobRow] = field(default_factory=dict)
    chunks: dict[tuple[str, int], ChunkRow] = field(default_factory=dict)
    job_events: list[dict[str, Any]] = field(default_factory=list)
    bars: list[BarBlock] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)
    workers: dict[str, dict[str, Any]] = field(default_factory=dict)
    dirty_jobs: set[str] = field(default_factory=set)
    dirty_chunks: set[tuple[str, int]] = field(default_factory=set)
    # A cleanup folded at the end of this batch: the store deletes finished jobs that ended
    # before it (and workers silent since), after writing the rows folded before it.
    cleanup_before: datetime | None = None
