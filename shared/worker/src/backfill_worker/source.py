"""The seam between the worker runtime and a data source.

A source only plans and fetches; the runtime owns consuming commands, retries, cancellation,
events and acks. IBKR, Yahoo and the synthetic source all plug in here without touching it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from backfill_contracts import BarBatch, ChunkSpec, CollectBars, CorporateAction, Outcome


@dataclass(frozen=True, slots=True)
class Plan:
    """The requests a job needs, in order, and the price type its bars are stored under."""

    price_type: str
    chunks: list[ChunkSpec]
    # What the bars are stored under when it is not the job's symbol (a future: ESH5).
    instrument: str | None = None
    # Chunks of the source's plan left out as stored already (see backfill_worker.stored).
    skipped: int = 0


@dataclass(frozen=True, slots=True)
class FetchRequest:
    job: CollectBars
    chunk: ChunkSpec
    try_number: int  # 1 on the first try of this chunk, 2 on the first retry, ...


@dataclass(frozen=True, slots=True)
class Fetched:
    """A chunk's bars with what some sources send beside them."""

    bars: BarBatch
    actions: list[CorporateAction] = field(default_factory=list)
    exchange_tz: str | None = None


class SourceError(Exception):
    """Raised by a source's plan or fetch when a request did not give bars.

    The outcome decides what the runtime does next: a transient one (timeout, upstream error,
    pacing, rate limit, gateway down) is retried with backoff; any other fails the job at once
    with `message`, which is shown to the user, so it should say what went wrong in plain words.
    An empty window is not an error: fetch returns an empty BarBatch.
    """

    def __init__(self, outcome: Outcome, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.outcome = outcome
        self.message = message
        # When the source knows how long to wait (a pool-wide pause, a pacing window).
        self.retry_after_s = retry_after_s


@runtime_checkable
class ReportsStatus(Protocol):
    """A source with state worth showing in the worker's heartbeat (a pause, a connection)."""

    def status(self) -> dict[str, Any]: ...


@runtime_checkable
class NamesSeries(Protocol):
    """A source that can say, without a request, what a job's bars are stored under.

    Lets a fill_gaps or top_up job with nothing missing end without asking the source
    anything, not even to plan (IB's contract details and head timestamp are requests).
    """

    def series_of(self, job: CollectBars) -> tuple[str, str] | None:
        """(instrument, price type) of the job's bars; None when only planning can tell."""
        ...


@runtime_checkable
class HasLifecycle(Protocol):
    """A source holding a connection: started before the worker takes work, stopped after."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class Source(Protocol):
    """A data source as the worker runtime sees it."""

    @property
    def name(self) -> str:
        """The source name used in commands and stream names (`cmd.<name>`)."""
        ...

    async def plan(self, job: CollectBars) -> Plan:
        """Split the job into chunk requests; raise SourceError for a job that cannot run."""
        ...

    async def fetch(self, request: FetchRequest) -> BarBatch | Fetched:
        """Fetch one chunk's bars (start <= ts < end); raise SourceError on failure."""
        ...
