"""API settings; every field is an environment variable prefixed BACKFILL_."""

from __future__ import annotations

from pydantic import Field

from backfill_bus import RedisSettings
from backfill_readmodel.settings import DatabaseSettings


class ApiSettings(RedisSettings, DatabaseSettings):
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)
