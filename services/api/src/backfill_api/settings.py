"""API settings; every field is an environment variable prefixed BACKFILL_."""

from __future__ import annotations

from pydantic import Field

from backfill_bus import RedisSettings, RetentionSettings
from backfill_readmodel.settings import DatabaseSettings


class ApiSettings(RedisSettings, DatabaseSettings, RetentionSettings):
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)
    # A worker silent this long is shown as not alive (3 missed heartbeats at the default 5 s).
    worker_timeout_s: float = Field(default=15.0, gt=0)
