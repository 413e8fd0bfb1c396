"""The IB Gateway endpoint the ibkr-workers connect to, changeable at run time.

Workers start on their settings (`BACKFILL_IBKR_HOST`, `BACKFILL_IBKR_PORT`); an endpoint set
here (by the console or the CLI) overrides them for every worker of the deployment, which
notices within a few seconds and reconnects, without a restart. Clearing it returns the
workers to their settings.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis

from backfill_bus.names import Names

MAX_PORT = 65535


@dataclass(frozen=True, slots=True)
class GatewayEndpoint:
    host: str
    port: int
    changed_by: str = ""
    changed_at: str = ""  # ISO 8601, UTC

    def __post_init__(self) -> None:
        if not self.host or any(c.isspace() for c in self.host) or len(self.host) > 253:
            raise ValueError("the gateway host is a hostname or an IP address, without spaces")
        if not 1 <= self.port <= MAX_PORT:
            raise ValueError(f"the gateway port is between 1 and {MAX_PORT}")

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def _key(names: Names) -> str:
    return names.source_key("ibkr", "endpoint")


async def read_gateway_endpoint(redis: Redis, names: Names) -> GatewayEndpoint | None:
    """The endpoint set at run time, or None when the workers use their settings."""
    raw: Any = await redis.get(_key(names))
    if raw is None:
        return None
    try:
        return GatewayEndpoint(**json.loads(raw))
    except (ValueError, TypeError):
        return None  # a hand-edited key gone bad: the workers keep their settings


async def write_gateway_endpoint(
    redis: Redis, names: Names, host: str, port: int, changed_by: str
) -> GatewayEndpoint:
    endpoint = GatewayEndpoint(
        host.strip(), port, changed_by, datetime.now(UTC).isoformat(timespec="seconds")
    )
    await redis.set(_key(names), json.dumps(_as_dict(endpoint)))
    return endpoint


async def clear_gateway_endpoint(redis: Redis, names: Names) -> None:
    await redis.delete(_key(names))


def _as_dict(endpoint: GatewayEndpoint) -> dict[str, Any]:
    return {
        "host": endpoint.host,
        "port": endpoint.port,
        "changed_by": endpoint.changed_by,
        "changed_at": endpoint.changed_at,
    }
