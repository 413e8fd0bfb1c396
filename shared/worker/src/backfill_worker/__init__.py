"""The worker runtime shared by every source: consume commands, plan, fetch, publish events."""

from backfill_worker.main import run_worker, run_worker_with_redis, serve
from backfill_worker.retry import RetryPolicy
from backfill_worker.runner import JobRunner, Limits, RunResult
from backfill_worker.settings import WorkerSettings
from backfill_worker.source import (
    Fetched,
    FetchRequest,
    HasLifecycle,
    NamesSeries,
    Plan,
    ReportsStatus,
    Source,
    SourceError,
)
from backfill_worker.waits import waiting
from backfill_worker.worker import Worker

__all__ = [
    "FetchRequest",
    "Fetched",
    "HasLifecycle",
    "JobRunner",
    "Limits",
    "NamesSeries",
    "Plan",
    "ReportsStatus",
    "RetryPolicy",
    "RunResult",
    "Source",
    "SourceError",
    "Worker",
    "WorkerSettings",
    "run_worker",
    "run_worker_with_redis",
    "serve",
    "waiting",
]
