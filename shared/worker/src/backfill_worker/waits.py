"""Waiting for the source without failing: `async with waiting(outcome, message, until): ...`.

A source waits for a pacing slot, or for a gateway to come back, deep inside its own helpers,
during planning or a fetch. Rather than thread a callback through every call, the runner puts
a reporter in the context of the task that runs the source: `waiting` finds it there, so the
job shows the wait ("waiting for pacing, next slot in 42 s") and the request timeout stops
while it lasts. Outside a runner (a unit test calling the source) it only runs the body.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Protocol

from backfill_contracts import Outcome


class WaitReporter(Protocol):
    async def started(self, outcome: Outcome, message: str, until: float | None) -> None:
        """A wait begins; `until` is the epoch second it should end, when known."""
        ...

    def ended(self) -> None: ...


current_reporter: ContextVar[WaitReporter | None] = ContextVar("wait_reporter", default=None)


@asynccontextmanager
async def waiting(
    outcome: Outcome, message: str, until: float | None = None
) -> AsyncIterator[None]:
    reporter = current_reporter.get()
    if reporter is not None:
        await reporter.started(outcome, message, until)
    try:
        yield
    finally:
        if reporter is not None:
            reporter.ended()
