"""Jobs by source and status, read from the projections at scrape time.

A gauge from the tables rather than counters in a process: the projections are the record, so
every API replica reports the same numbers, and a restart loses nothing.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.ext.asyncio import AsyncEngine

from backfill_bus.metrics import SCRAPE_CACHE_S, Cached
from backfill_contracts import known_sources
from backfill_readmodel.queries import job_counts

STATUSES = ("queued", "running", "retrying", "succeeded", "failed", "cancelled")


class JobsCollector(Collector):
    """`backfill_jobs{source,status}`: every known source and status, zeros included, so a
    panel shows a flat line rather than nothing."""

    def __init__(
        self,
        engine: AsyncEngine,
        registry: CollectorRegistry,
        errors: Counter,
        ttl_s: float = SCRAPE_CACHE_S,
    ) -> None:
        self.engine = engine
        self.counts: dict[tuple[str, str], int] = {}
        self.cache = Cached("jobs", self._read, errors, ttl_s)
        registry.register(self)

    async def refresh(self) -> None:
        await self.cache.refresh()

    async def _read(self) -> None:
        async with self.engine.connect() as conn:
            rows = await job_counts(conn)
        self.counts = {(source, status): count for source, status, count in rows}

    def describe(self) -> Iterable[Metric]:
        return [_family()]

    def collect(self) -> Iterable[Metric]:
        family = _family()
        if self.cache.fresh:
            sources = sorted(set(known_sources()) | {source for source, _ in self.counts})
            statuses = [*STATUSES, *sorted({s for _, s in self.counts} - set(STATUSES))]
            for source in sources:
                for status in statuses:
                    family.add_metric([source, status], self.counts.get((source, status), 0))
        return [family]


def _family() -> GaugeMetricFamily:
    return GaugeMetricFamily(
        "backfill_jobs",
        "Jobs in the projections, by source and status",
        labels=["source", "status"],
    )
