"""Settings of a worker process; every field is an environment variable prefixed BACKFILL_."""

from __future__ import annotations

import os
import socket

from pydantic import Field

from backfill_bus import RedisSettings
from backfill_bus.liveness import LivenessSettings
from backfill_bus.metrics import MetricsSettings


def default_worker_id() -> str:
    # Unique per process, so replicas and `--workers N` never share a consumer name.
    return f"{socket.gethostname()}-{os.getpid()}"


class WorkerSettings(RedisSettings, LivenessSettings, MetricsSettings):
    worker_id: str = Field(default_factory=default_worker_id)
    heartbeat_interval_s: float = Field(default=5.0, gt=0)
    # A worker done with a job says "idle" this much later, unless its next job starts first.
    idle_heartbeat_delay_s: float = Field(default=0.25, ge=0)
    poll_interval_ms: int = Field(default=500, ge=10)
    max_chunk_tries: int = Field(default=5, ge=1)
    retry_base_delay_s: float = Field(default=1.0, ge=0)
    retry_max_delay_s: float = Field(default=60.0, ge=0)
    cancel_poll_interval_s: float = Field(default=0.2, gt=0)
    claim_idle_ms: int = Field(default=30_000, ge=100)
    claim_interval_ms: int = Field(default=1_000, ge=10)
    max_deliveries: int = Field(default=5, ge=1)
    job_time_limit_s: float = Field(default=3600.0, gt=0)
    request_timeout_s: float = Field(default=60.0, gt=0)
    announce_wait_s: float = Field(default=1.0, ge=0)
    # Jobs fetching the same chunk at once share one request (sharing.py): the leader's lease,
    # which a dead leader's followers wait out, and how long its chunk event stays pointed at
    # for late askers.
    fetch_lease_ms: int = Field(default=10_000, ge=100)
    shared_result_ttl_s: int = Field(default=60, ge=1)
    shutdown_grace_s: float = Field(default=8.0, gt=0)
    # How long a worker lives on once its command subscriber stopped (FastStream stops one for
    # good when its group is deleted): then it exits non-zero, and its supervisor restarts it.
    subscriber_lost_grace_s: float = Field(default=15.0, gt=0)
    # The projections' database, read to plan only what is not stored (job modes, no
    # refetching). Empty: the worker cannot see it, so it fetches every chunk of a `full` job
    # and refuses `fill_gaps` and `top_up`.
    database_url: str = ""
