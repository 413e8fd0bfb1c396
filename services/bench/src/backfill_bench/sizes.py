"""How much work each workload does: the issue's sizes (full) and small ones for CI (quick)."""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True, slots=True)
class Sizes:
    runs: int = 3
    workers: int = 2
    floor_redis_samples: int = 500
    floor_copy_batches: int = 40  # x 10,000 rows
    dispatch_jobs: int = 200  # per path (client library, HTTP), at dispatch_rate
    dispatch_rate: float = 20.0  # jobs per second
    throughput_jobs: int = 1000  # of one chunk
    ingest_jobs: int = 20
    ingest_chunks: int = 50  # per job; 390 bars each
    progress_jobs: int = 40  # of progress_chunks chunks, at progress_rate
    progress_chunks: int = 5
    progress_rate: float = 2.0
    console_jobs: int = 3  # per run, of console_chunks chunks
    console_chunks: int = 30
    # The sim's latency: chunks far enough apart to see each one, and a job long enough that
    # the page is watching before most of its chunks come.
    console_chunk_ms: int = 300
    read_table_rows: int = 10_000_000
    read_requests: int = 5  # per format and run
    soak_s: float = 600.0  # per run of the memory soak


FULL = Sizes()
QUICK = Sizes(
    floor_redis_samples=100,
    floor_copy_batches=10,
    dispatch_jobs=30,
    throughput_jobs=200,
    ingest_jobs=4,
    ingest_chunks=10,
    progress_jobs=8,
    console_jobs=1,
    console_chunks=20,
    read_table_rows=200_000,
    read_requests=2,
    soak_s=20.0,
)


def sizes_for(
    quick: bool,
    *,
    soak_s: float | None = None,
    workers: int | None = None,
    runs: int | None = None,
) -> Sizes:
    sizes = QUICK if quick else FULL
    if runs is not None:
        sizes = replace(sizes, runs=max(1, runs))
    if soak_s is not None:
        sizes = replace(sizes, soak_s=soak_s)
    if workers is not None:
        sizes = replace(sizes, workers=workers)
    return sizes
