"""One pooled connection held from call to call, used as its asyncpg connection.

For hot paths that run statements straight on asyncpg (a worker's direct reads, the projector's
batches): checking a connection out of the pool for each, with its pre-ping, cost more than the
statements. Instead one is held; a connection the server closed meanwhile (a PostgreSQL restart)
is seen closed before it is used, and replaced. A caller that meets any other broken connection
drops it, and the next call connects anew.
"""

from __future__ import annotations

import contextlib
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine


class HeldConnection:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._held: AsyncConnection | None = None
        self._driver: Any = None  # the held connection's asyncpg.Connection

    async def driver(self) -> Any:
        """The held asyncpg connection: a new one if none is held or the server closed it."""
        if self._driver is not None and self._driver.is_closed():
            await self.drop()
        if self._driver is None:
            held = await self.engine.connect()
            try:
                raw = await held.get_raw_connection()
            except BaseException:
                await held.close()
                raise
            self._held, self._driver = held, raw.driver_connection
        return self._driver

    async def drop(self) -> None:
        """Discard the held connection (broken, or in doubt): the next `driver` connects anew."""
        held, self._held, self._driver = self._held, None, None
        if held is not None:
            with contextlib.suppress(Exception):  # already gone: nothing more to release
                await held.invalidate()
                await held.close()

    async def release(self) -> None:
        """Give the held connection back to the pool."""
        held, self._held, self._driver = self._held, None, None
        if held is not None:
            with contextlib.suppress(Exception):  # a broken one: nothing more to release
                await held.close()
