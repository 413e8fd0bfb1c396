"""Projector settings; every field is an environment variable prefixed BACKFILL_."""

from __future__ import annotations

from pydantic import Field

from backfill_bus import RedisSettings
from backfill_readmodel.settings import DatabaseSettings


class ProjectorSettings(RedisSettings, DatabaseSettings):
    projector_batch_size: int = Field(default=500, ge=1, le=10_000)
    projector_block_ms: int = Field(default=500, ge=1)
