"""Database settings shared by the services that read or write projections."""

from __future__ import annotations

from pathlib import Path

from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class DatabaseSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BACKFILL_", extra="ignore")

    state_dir: Path = Path(".backfill")
    # Empty means the embedded default: SQLite in the state folder.
    database_url: str = ""

    @model_validator(mode="after")
    def _default_database(self) -> DatabaseSettings:
        if not self.database_url:
            path = (self.state_dir / "backfill.db").resolve()
            self.database_url = f"sqlite+aiosqlite:///{path}"
        return self
