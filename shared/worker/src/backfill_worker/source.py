"""The seam between the worker runtime and a data source.

A source only plans and fetches; the runtime owns consuming commands, retries, cancellation,
events and acks. IBKR, Yahoo and the synthetic source all plug in here without touching it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from backfill_contracts import BarBatch, ChunkSpec, CollectBars, Outcome


@dataclass(frozen=True, slots=True)
class Plan:
    """The requests a job needs, in order, and the price type its bars are stored under."""

    price_type: str
    chunks: list[ChunkSpec]


@dataclass(frozen=True, slots=True)
class FetchRequest:
    job: CollectBars
    chunk: ChunkSpec
    try_number: int  # 1 on the first try of this chunk, 2 on the first retry, ...


class SourceError(Exception):
    """Raised by a source's plan or fetch when a request did not give bars.

    The outcome decides what the runtime does next: a transient one (timeout, upstream error,
    pacing, rate limit, gateway down) is retried with backoff; any other fails the job at once
    with `message`, which is shown to the user, so it should say what went wrong in plain words.
    An empty window is not an error: fetch returns an empty BarBatch.
    """

    def __init__(self, outcome: Outcome, message: str) -> None:
        super().__init__(message)
        self.outcome = outcome
        self.message = message


class Source(Protocol):
    """A data source as the worker runtime sees it."""

    @property
    def name(self) -> str:
        """The source name used in commands and stream names (`cmd.<name>`)."""
        ...

    async def plan(self, job: CollectBars) -> Plan:
        """Split the job into chunk requests; raise SourceError for a job that cannot run."""
        ...

    async def fetch(self, request: FetchRequest) -> BarBatch:
        """Fetch one chunk's bars (start <= ts < end); raise SourceError on failure."""
        ...
