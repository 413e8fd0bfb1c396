"""One-row reads straight on asyncpg, for a hot path that SQLAlchemy's adaption slows down.

Measured on a worker's look before each job (one row, PostgreSQL on the same machine): through
an `AsyncConnection` it cost 0.62 ms a look against 0.13 ms on asyncpg alone (a pool pre-ping
round trip, and SQLAlchemy's CPU on the event loop, which delays the job's start). Here the
statement is compiled once by the engine's dialect and run on one connection held for the
process's life, so a read is a single round trip of a prepared statement.

Values go in and come out as asyncpg takes and gives them, without SQLAlchemy's type
processing: fine for plain strings, numbers and aware datetimes, which is all its callers pass.
Only for an engine on asyncpg (`DirectReads.of` returns None otherwise: SQLite keeps the usual
path). The held connection replaces the pre-ping: a read that finds it broken (PostgreSQL
restarted) drops it and runs once more on a new one.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, cast

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

from backfill_readmodel.held import HeldConnection

# The server's errors that say the connection is gone (it shut down, say), not the statement.
_SERVER_GONE = (asyncpg.PostgresConnectionError, asyncpg.exceptions.OperatorInterventionError)


@dataclass(frozen=True, slots=True)
class _Compiled:
    statement: ClauseElement
    sql: str
    names: list[str]  # the parameters' names, in the order of their $n
    defaults: dict[str, Any]

    def args(self, params: dict[str, Any]) -> list[Any]:
        return [params[n] if n in params else self.defaults[n] for n in self.names]


class DirectReadError(Exception):
    """A direct read failed; its cause is the driver's error."""


class DirectReads:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._held = HeldConnection(engine)
        self._compiled: dict[int, _Compiled] = {}
        self._lock = asyncio.Lock()  # an asyncpg connection runs one statement at a time

    @classmethod
    def of(cls, engine: AsyncEngine | None) -> DirectReads | None:
        if engine is None or engine.dialect.driver != "asyncpg":
            return None
        return cls(engine)

    async def fetchrow(self, statement: ClauseElement, params: dict[str, Any]) -> Any:
        """The statement's first row (an asyncpg Record), None if it has none."""
        compiled = self._compiled_of(statement)
        args = compiled.args(params)
        async with self._lock:
            for last_try in (False, True):
                try:
                    driver = await self._held.driver()
                except Exception as error:  # SQLAlchemy's error or the driver's, connecting
                    raise DirectReadError(str(error) or type(error).__name__) from error
                try:
                    return await driver.fetchrow(compiled.sql, *args)
                except asyncpg.PostgresError as error:
                    if not isinstance(error, _SERVER_GONE):  # the statement's: keep the connection
                        raise DirectReadError(str(error)) from error
                    broken: Exception = error
                except Exception as error:  # the driver's or the socket's: the connection broke
                    broken = error
                await self._held.drop()
                if last_try:
                    raise DirectReadError(str(broken) or type(broken).__name__) from broken
        raise AssertionError("unreachable: the last try returns or raises")

    async def close(self) -> None:
        async with self._lock:
            await self._held.drop()

    def _compiled_of(self, statement: ClauseElement) -> _Compiled:
        # Keyed by identity, with the statement kept so its id is never reused: callers pass
        # statements built once.
        known = self._compiled.get(id(statement))
        if known is None:
            compiled = cast(SQLCompiler, statement.compile(dialect=self.engine.dialect))
            # The values of the statement's own literals; the caller's parameters go on top.
            defaults = dict(compiled.construct_params(_check=False))
            names = list(compiled.positiontup or [])
            known = _Compiled(statement, compiled.string, names, defaults)
            self._compiled[id(statement)] = known
        return known
