"""The console's composition root: the clients every page shares, built once per process."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from datetime import UTC, datetime

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from backfill_bus import CommandBus, Names
from backfill_readmodel.engine import create_engine
from backfill_ui.live import EventTail
from backfill_ui.settings import UiSettings


@dataclass
class Services:
    settings: UiSettings
    redis: Redis
    engine: AsyncEngine
    names: Names
    commands: CommandBus
    tail: EventTail
    producer: str

    @classmethod
    def create(cls, settings: UiSettings) -> Services:
        """Builds clients without connecting: nothing is opened until the app starts."""
        redis = Redis.from_url(settings.redis_url)
        names = Names(settings.redis_namespace)
        producer = f"console@{socket.gethostname()}"
        return cls(
            settings=settings,
            redis=redis,
            engine=create_engine(settings.database_url),
            names=names,
            commands=CommandBus(redis, names, producer),
            tail=EventTail(redis, names),
            producer=producer,
        )

    async def start(self) -> None:
        self.tail.start()

    async def close(self) -> None:
        await self.tail.stop()
        await self.redis.aclose()
        await self.engine.dispose()

    def connect(self) -> AsyncConnection:
        """`async with services.connect() as conn:` one short read of the projections."""
        return self.engine.connect()

    @staticmethod
    def now() -> datetime:
        return datetime.now(UTC)
