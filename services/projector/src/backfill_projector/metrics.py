"""What the projector counts: bars stored, events folded, batch time, lag, dead letters.

Counted per committed batch from a tally the fold loop keeps (a dict update per chunk event,
never per bar), so a batch rolled back by an outage and read again is counted once.
"""

from __future__ import annotations

import time
from collections import Counter as Tally
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram
from redis.asyncio import Redis

from backfill_bus import Names
from backfill_bus.metrics import (
    MetricsServer,
    StreamsCollector,
    dead_letters,
    new_registry,
    refresh_errors,
)

BATCH_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900)


@dataclass(slots=True)
class BatchTally:
    """What one batch folded: bars by source, events by type, and the jobs it first saw; and
    when each entry it moved past was appended to the log (its id's milliseconds)."""

    bars: Tally[str] = field(default_factory=Tally)
    events: Tally[str] = field(default_factory=Tally)
    dead_letters: int = 0
    new_jobs: list[str] = field(default_factory=list)
    logged_ms: list[int] = field(default_factory=list)


class ProjectorMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or new_registry()
        r = self.registry
        self.bars_stored = Counter(
            "backfill_bars_stored",
            "Bars written to the bars table (upserted) from collected chunks, by source",
            ["source"],
            registry=r,
        )
        self.events = Counter(
            "backfill_projector_events",
            "Events folded into the projections, by type",
            ["type"],
            registry=r,
        )
        self.batch_seconds = Histogram(
            "backfill_projector_batch_seconds",
            "Time to fold and commit one batch of events",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        # How stale the tables are: what the console and the API show lags the log by this.
        # Against Redis's clock (entry ids), so hosts' clocks must agree (NTP) for it to hold.
        self.lag_seconds = Histogram(
            "backfill_projector_lag_seconds",
            "Time from an event's entry on the log to the commit of the batch that folded it",
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self.dead_letters = dead_letters(r)
        self.refresh_errors = refresh_errors(r)

    def committed(self, tally: BatchTally, seconds: float, stream: str) -> None:
        for source, bars in tally.bars.items():
            self.bars_stored.labels(source).inc(bars)
        for event_type, count in tally.events.items():
            self.events.labels(event_type).inc(count)
        if tally.dead_letters:
            self.dead_letters.labels(stream).inc(tally.dead_letters)
        self.batch_seconds.observe(seconds)
        now_ms = time.time() * 1000
        for logged_ms in tally.logged_ms:
            self.lag_seconds.observe(max(0.0, now_ms - logged_ms) / 1000)


def metrics_server(
    metrics: ProjectorMetrics, redis: Redis, names: Names, host: str, port: int
) -> MetricsServer:
    """`/metrics` of the projector: its counters and the event log's and dlq's backlog."""
    streams = StreamsCollector(
        redis,
        [(names.events, "event log"), (names.dlq, "dead letters")],
        metrics.registry,
        metrics.refresh_errors,
    )
    return MetricsServer(metrics.registry, [streams], host, port)
