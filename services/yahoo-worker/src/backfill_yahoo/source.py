"""The `yahoo` source: plans within Yahoo's limits and fetches with yfinance, never silently."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from backfill_contracts import BarBatch, CollectBars, Outcome, YahooOptions
from backfill_worker import Fetched, FetchRequest, Plan, SourceError
from backfill_yahoo.budget import PausedError, RequestBudget
from backfill_yahoo.client import YahooClient
from backfill_yahoo.frames import adjusted, from_history
from backfill_yahoo.outcomes import classify
from backfill_yahoo.planning import YAHOO_INTERVAL, plan_chunks

PRICE_TYPE = "trades"
ADJUSTED_PRICE_TYPE = "adjusted"


class YahooSource:
    def __init__(
        self,
        client: YahooClient,
        budget: RequestBudget,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.client = client
        self.budget = budget
        self.now = now

    @property
    def name(self) -> str:
        return "yahoo"

    def series_of(self, job: CollectBars) -> tuple[str, str]:
        return job.symbol, ADJUSTED_PRICE_TYPE if _options(job).adjusted else PRICE_TYPE

    async def plan(self, job: CollectBars) -> Plan:
        price_type = ADJUSTED_PRICE_TYPE if _options(job).adjusted else PRICE_TYPE
        chunks = plan_chunks(job.bar_size, job.start, job.end, self.now())
        return Plan(price_type=price_type, chunks=chunks)

    async def fetch(self, request: FetchRequest) -> Fetched:
        job, chunk = request.job, request.chunk
        if request.try_number > 1:
            self.client.forget_responses()  # a cached failure would come straight back
        try:
            await self.budget.take()
        except PausedError as paused:
            raise SourceError(
                Outcome.RATE_LIMITED,
                f"the Yahoo pool is paused after a 429 for {paused.seconds:.1f} s more",
                retry_after_s=paused.seconds,
            ) from None
        interval = YAHOO_INTERVAL[job.bar_size]
        try:
            frame = await asyncio.to_thread(
                self.client.history, job.symbol, interval, chunk.start, chunk.end
            )
        except Exception as error:  # every failure is classified; none passes for "no data"
            outcome, message = classify(error, job.symbol)
            if outcome is Outcome.NO_DATA:
                return Fetched(BarBatch())
            if outcome is Outcome.RATE_LIMITED:
                pause = await self.budget.rate_limited()
                message = f"{message}; pausing the pool {pause:.0f} s"
                raise SourceError(outcome, message, pause) from error
            raise SourceError(outcome, message) from error
        await self.budget.succeeded()
        collected = from_history(frame, chunk.start, chunk.end)
        bars = adjusted(collected.bars) if _options(job).adjusted else collected.bars
        return Fetched(bars, collected.actions, collected.exchange_tz)

    def status(self) -> dict[str, Any]:
        """For the heartbeat: the pool's request budget, and whether Yahoo paused it (429)."""
        budget = {
            "rate_per_s": round(self.budget.current_rate, 4),
            "configured_rate_per_s": self.budget.rate,
            "burst": self.budget.burst,
        }
        paused = self.budget.paused_until
        if paused is None or paused <= time.time():
            return {"yahoo": "ok", "budget": budget}
        until = datetime.fromtimestamp(paused, UTC).isoformat()
        return {"yahoo": "paused", "paused_until": until, "budget": budget}


def _options(job: CollectBars) -> YahooOptions:
    try:
        return YahooOptions.model_validate(job.options)
    except ValueError as error:  # pydantic's ValidationError is a ValueError
        raise SourceError(Outcome.INVALID_REQUEST, f"invalid yahoo options: {error}") from error
