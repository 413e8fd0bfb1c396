"""Projector settings; every field is an environment variable prefixed BACKFILL_."""

from __future__ import annotations

from pydantic import Field

from backfill_bus import RedisSettings, RetentionSettings
from backfill_bus.liveness import LivenessSettings
from backfill_bus.metrics import MetricsSettings
from backfill_readmodel.settings import DatabaseSettings


class ProjectorSettings(
    RedisSettings, DatabaseSettings, RetentionSettings, LivenessSettings, MetricsSettings
):
    projector_batch_size: int = Field(default=500, ge=1, le=10_000)
    projector_block_ms: int = Field(default=500, ge=1)
    # Maintenance: a cleanup request per period, and trimming of old stream entries.
    cleanup_interval_s: float = Field(default=86400, gt=0)
    event_retention_days: int = Field(default=7, ge=0)
    # Schedules: how often the scheduler looks for due ticks (a tick fires within this long).
    schedule_poll_s: float = Field(default=15.0, gt=0)
    # Webhooks for finished jobs (subscribed from the console): one POST, retried with backoff.
    webhook_timeout_s: float = Field(default=10.0, gt=0)
    webhook_max_tries: int = Field(default=5, ge=1)
    webhook_retry_base_s: float = Field(default=1.0, ge=0)
