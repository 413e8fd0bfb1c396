"""Where things are: state dir, database, Redis and API addresses, resolved from flags and env.

Every function takes the environment as a mapping so tests pass their own instead of patching
os.environ.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

DEFAULT_API_URL = "http://127.0.0.1:8000"
DEFAULT_STATE_DIR = ".backfill"
DEFAULT_DEV_REDIS_PORT = 6380
DEFAULT_API_PORT = 8000
DEFAULT_UI_PORT = 8080
# /metrics of the services without a web app: the projector on the base, each worker above it.
DEFAULT_METRICS_PORT_BASE = 9101
METRICS_SERVICES = ("projector", "sim-worker", "yahoo-worker", "ibkr-worker")
# The dev stack binds to loopback only: it has no authentication and is not meant to be shared.
DEV_HOST = "127.0.0.1"


class SettingsError(Exception):
    """Raised when a flag or environment variable holds a value the CLI cannot use."""


def state_dir(flag: str | None, env: Mapping[str, str]) -> Path:
    """The dev state dir: the flag, else BACKFILL_STATE_DIR, else ./.backfill, made absolute.

    Absolute because it is handed to child processes and baked into the SQLite URL, and a
    relative path would silently mean something else to a child started elsewhere.
    """
    raw = flag or env.get("BACKFILL_STATE_DIR") or DEFAULT_STATE_DIR
    return Path(raw).expanduser().resolve()


def database_url(state: Path, env: Mapping[str, str]) -> str:
    return env.get("BACKFILL_DATABASE_URL") or f"sqlite+aiosqlite:///{state / 'backfill.db'}"


def without_password(url: str) -> str:
    """The URL with any password replaced by ***, for logs: secrets never reach a terminal."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def dev_redis_port(env: Mapping[str, str]) -> int:
    return _port(
        env.get("BACKFILL_DEV_REDIS_PORT"), DEFAULT_DEV_REDIS_PORT, "BACKFILL_DEV_REDIS_PORT"
    )


def redis_url(env: Mapping[str, str]) -> str:
    """The Redis every service uses: BACKFILL_REDIS_URL, else the one `backfill dev` starts."""
    return env.get("BACKFILL_REDIS_URL") or f"redis://{DEV_HOST}:{dev_redis_port(env)}/0"


def api_url(flag: str | None, env: Mapping[str, str]) -> str:
    return (flag or env.get("BACKFILL_API_URL") or DEFAULT_API_URL).rstrip("/")


def _port(raw: str | None, default: int, what: str) -> int:
    if raw is None or raw == "":
        return default
    try:
        port = int(raw)
    except ValueError:
        port = -1
    if not 0 < port < 65536:
        raise SettingsError(f"{what} must be a TCP port number (1-65535), not {raw!r}")
    return port


@dataclass(frozen=True)
class StackSettings:
    """What the services of the local stack are told through their environment."""

    state_dir: Path
    database_url: str
    redis_url: str
    # True when BACKFILL_REDIS_URL was not given, so `backfill dev` runs its own Redis.
    start_redis: bool
    redis_port: int
    api_port: int
    ui_port: int = DEFAULT_UI_PORT
    metrics_port_base: int = DEFAULT_METRICS_PORT_BASE  # 0: no metrics servers

    @property
    def metrics_ports(self) -> dict[str, int]:
        """The metrics port of each service that serves one (none when the base is 0)."""
        if not self.metrics_port_base:
            return {}
        return {name: self.metrics_port_base + i for i, name in enumerate(METRICS_SERVICES)}

    def metrics_env(self, service: str) -> dict[str, str]:
        """What tells `service` to serve /metrics on its own port, on loopback."""
        port = self.metrics_ports.get(service)
        if port is None:
            return {}
        return {"BACKFILL_METRICS_HOST": DEV_HOST, "BACKFILL_METRICS_PORT": str(port)}

    @property
    def redis_dir(self) -> Path:
        return self.state_dir / "redis"

    @property
    def docs_url(self) -> str:
        return f"http://{DEV_HOST}:{self.api_port}/docs"

    @property
    def console_url(self) -> str:
        return f"http://{DEV_HOST}:{self.ui_port}/"

    def child_env(self, base: Mapping[str, str]) -> dict[str, str]:
        env = dict(base)
        env.update(
            BACKFILL_REDIS_URL=self.redis_url,
            BACKFILL_DATABASE_URL=self.database_url,
            BACKFILL_STATE_DIR=str(self.state_dir),
            BACKFILL_API_HOST=DEV_HOST,
            BACKFILL_API_PORT=str(self.api_port),
            BACKFILL_UI_HOST=DEV_HOST,
            BACKFILL_UI_PORT=str(self.ui_port),
            # Children write to a pipe, where Python would buffer their logs for minutes.
            PYTHONUNBUFFERED="1",
        )
        return env


def stack_settings(
    state_dir_flag: str | None,
    api_port: int = DEFAULT_API_PORT,
    env: Mapping[str, str] | None = None,
    ui_port: int = DEFAULT_UI_PORT,
    metrics_port_base: int = DEFAULT_METRICS_PORT_BASE,
) -> StackSettings:
    env = os.environ if env is None else env
    state = state_dir(state_dir_flag, env)
    return StackSettings(
        state_dir=state,
        database_url=database_url(state, env),
        redis_url=redis_url(env),
        start_redis=not env.get("BACKFILL_REDIS_URL"),
        redis_port=dev_redis_port(env),
        api_port=api_port,
        ui_port=ui_port,
        metrics_port_base=metrics_port_base,
    )
