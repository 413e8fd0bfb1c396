"""Settings every service that talks to Redis shares; each service adds its own on top."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class RedisSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BACKFILL_", extra="ignore")

    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_namespace: str = ""
    # How long an idempotency key names its job (API submits and raw commands alike).
    idempotency_ttl_s: int = Field(default=7 * 86400, ge=60)
