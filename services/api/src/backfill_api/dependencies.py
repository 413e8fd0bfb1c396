"""The API's composition root: clients built once in the lifespan, handed to routes by type."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from backfill_api.settings import ApiSettings
from backfill_bus import CommandBus


@dataclass(frozen=True, slots=True)
class Services:
    redis: Redis
    engine: AsyncEngine
    commands: CommandBus
    settings: ApiSettings


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def _services(request: Request) -> Services:
    # Async, though it awaits nothing: FastAPI runs a plain `def` dependency in a thread, and
    # that hop cost every request using it a thread handoff each way (~0.5 ms under load).
    return get_services(request)


async def get_connection(request: Request) -> AsyncIterator[AsyncConnection]:
    async with get_services(request).engine.connect() as conn:
        yield conn


ServicesDep = Annotated[Services, Depends(_services)]
ConnectionDep = Annotated[AsyncConnection, Depends(get_connection)]
