"""API settings; every field is an environment variable prefixed BACKFILL_."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from backfill_bus import RedisSettings, RetentionSettings
from backfill_bus.tokens import EnvToken, parse_env_tokens
from backfill_readmodel.settings import DatabaseSettings


class ApiSettings(RedisSettings, DatabaseSettings, RetentionSettings):
    # A refused setting's error would otherwise quote its value, BACKFILL_API_TOKENS included.
    model_config = SettingsConfigDict(hide_input_in_errors=True)

    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)
    # A worker silent this long is shown as not alive (3 missed heartbeats at the default 5 s).
    worker_timeout_s: float = Field(default=15.0, gt=0)
    # Bars per query of a `GET /bars` export: the memory one response holds at a time.
    bars_batch_size: int = Field(default=10_000, ge=1, le=100_000)
    # `scope:token` pairs, comma-separated (scopes: read, submit, admin). Secret: never shown.
    api_tokens: SecretStr | None = None
    # True: GET endpoints answer without a token (a token that is sent must still be valid).
    api_open_reads: bool = False

    @field_validator("api_tokens")
    @classmethod
    def _tokens_well_formed(cls, value: SecretStr | None) -> SecretStr | None:
        """Refuse to start on a malformed list; the error names the entry, never the token."""
        if value is None or not value.get_secret_value().strip():
            return None
        parse_env_tokens(value.get_secret_value())
        return value

    @property
    def env_tokens(self) -> tuple[EnvToken, ...]:
        if self.api_tokens is None:
            return ()
        return parse_env_tokens(self.api_tokens.get_secret_value())
