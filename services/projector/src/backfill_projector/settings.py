"""Projector settings; every field is an environment variable prefixed BACKFILL_."""

from __future__ import annotations

from pydantic import Field

from backfill_bus import RedisSettings, RetentionSettings
from backfill_readmodel.settings import DatabaseSettings


class ProjectorSettings(RedisSettings, DatabaseSettings, RetentionSettings):
    projector_batch_size: int = Field(default=500, ge=1, le=10_000)
    projector_block_ms: int = Field(default=500, ge=1)
    # Maintenance: a cleanup request per period, and trimming of old stream entries.
    cleanup_interval_s: float = Field(default=86400, gt=0)
    event_retention_days: int = Field(default=7, ge=0)
