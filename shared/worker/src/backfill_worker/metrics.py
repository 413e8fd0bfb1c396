"""What a worker counts: jobs, chunk fetches, waits for the source, dead letters.

Updated per job, per fetch and per wait, never per bar: the runtime's hot path pays a counter
increment or a histogram observation per chunk at most.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from backfill_bus.metrics import dead_letters, new_registry

# From a fast local source (sim, ~10 ms) to a slow paced one (IBKR, minutes with its waits).
CHUNK_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
# Pacing waits: IB's identical-request rule is 15 s, its 10-minute window up to 600 s.
WAIT_BUCKETS = (0.1, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600)


class WorkerMetrics:
    def __init__(self, source: str, registry: CollectorRegistry | None = None) -> None:
        self.source = source
        self.registry = registry or new_registry()
        r = self.registry
        self.jobs_started = Counter(
            "backfill_worker_jobs_started",
            "Jobs this worker started or resumed, by source",
            ["source"],
            registry=r,
        ).labels(source)
        self.jobs_finished = Counter(
            "backfill_worker_jobs_finished",
            "Jobs that left this worker, by source and how (succeeded, failed, cancelled, "
            "handed_back, lost)",
            ["source", "status"],
            registry=r,
        )
        self.chunk_seconds = Histogram(
            "backfill_chunk_duration_seconds",
            "Time of one fetch of one chunk (each try), waits included, by source and outcome "
            "(ok, no_data, or the failure's outcome)",
            ["source", "outcome"],
            buckets=CHUNK_BUCKETS,
            registry=r,
        )
        self.wait_seconds = Histogram(
            "backfill_pacing_wait_seconds",
            "Time spent waiting for the source (a pacing slot, a gateway, a rate-limit pause), "
            "by source and outcome",
            ["source", "outcome"],
            buckets=WAIT_BUCKETS,
            registry=r,
        )
        self.chunks_shared = Counter(
            "backfill_chunks_shared",
            "Chunks a job took from another job's fetch of the same window (no request made), "
            "by source",
            ["source"],
            registry=r,
        ).labels(source)
        self.dead_letters = dead_letters(r)
        self.busy = Gauge(
            "backfill_worker_busy", "1 while the worker runs a job", ["source"], registry=r
        ).labels(source)

    def job_finished(self, status: str) -> None:
        self.jobs_finished.labels(self.source, status).inc()

    def chunk_fetched(self, outcome: str, seconds: float) -> None:
        self.chunk_seconds.labels(self.source, outcome).observe(seconds)

    def waited(self, outcome: str, seconds: float) -> None:
        self.wait_seconds.labels(self.source, outcome).observe(seconds)
