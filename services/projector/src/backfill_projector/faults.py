"""Which failures are outages (wait and retry) and which are bugs (stop loudly).

An outage is a server we cannot reach right now: PostgreSQL or SQLite refusing, resetting or
locked, Redis down or restarting. Waiting fixes it, and nothing is lost meanwhile because the
position is committed with the rows. Anything else (a constraint violation, a missing table, a
bug in the fold) would come back on every retry, so it must stop the projector where a human
sees it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

import asyncpg
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DBAPIError, OperationalError

Outage = Literal["redis", "database"]

# PostgreSQL SQLSTATEs of an unreachable or unavailable server: class 08 (connection
# exception), 57P01-57P03 (shutdown, crash, not accepting connections yet), 53300 (too many
# connections). https://www.postgresql.org/docs/current/errcodes-appendix.html
_UNAVAILABLE_STATES = ("08", "57P01", "57P02", "57P03", "53300")
# SQLite reports bugs (no such table, syntax errors) as OperationalError too: only these
# messages mean "try again later".
_SQLITE_UNAVAILABLE = (
    "database is locked",
    "database table is locked",
    "readonly database",
    "disk i/o error",
    "unable to open database file",
)


def outage_of(error: BaseException) -> Outage | None:
    """The server `error` says is unavailable ("redis" or "database"); None for a bug."""
    if isinstance(error, RedisConnectionError | RedisTimeoutError):
        return "redis"
    if isinstance(error, ResponseError) and str(error).startswith("NOGROUP"):
        return "redis"  # Redis came back without our consumer group: ensure it again
    if isinstance(error, DBAPIError):
        return "database" if _database_unavailable(error) else None
    # The live projector runs its statements straight on asyncpg (see pg_tables): its errors
    # come unwrapped. A connection it finds closed (the server went away mid-batch) is one too.
    if isinstance(error, asyncpg.PostgresError):
        return "database" if _unavailable_state(error.sqlstate) else None
    if isinstance(error, asyncpg.InterfaceError) and "connection is closed" in str(error):
        return "database"
    if isinstance(error, OSError):  # refused or reset before the driver could wrap it
        return "database"
    return None


def _database_unavailable(error: DBAPIError) -> bool:
    if error.connection_invalidated:
        return True
    if isinstance(error.orig, sqlite3.Error):
        message = str(error.orig).lower()
        return any(text in message for text in _SQLITE_UNAVAILABLE)
    if isinstance(error, OperationalError):
        return True
    return _unavailable_state(getattr(error.orig, "sqlstate", None))


def _unavailable_state(state: object) -> bool:
    return isinstance(state, str) and state.startswith(_UNAVAILABLE_STATES)


@dataclass
class Backoff:
    """Capped exponential backoff: 0.5 s, 1 s, 2 s, ... up to 30 s; reset after a success."""

    first_s: float = 0.5
    cap_s: float = 30.0
    next_s: float = field(init=False)

    def __post_init__(self) -> None:
        self.next_s = self.first_s

    def take(self) -> float:
        delay = self.next_s
        self.next_s = min(self.next_s * 2, self.cap_s)
        return delay

    def reset(self) -> None:
        self.next_s = self.first_s


@dataclass
class OutageLog:
    """One warning when an outage starts and one line when it ends, not one per retry."""

    log: logging.Logger
    what: str
    current: Outage | None = None
    since: float = 0.0

    def failed(self, outage: Outage, error: BaseException, retry_in_s: float) -> None:
        if self.current != outage:
            if self.current is None:
                self.since = time.monotonic()
            self.current = outage
            self.log.warning(
                "%s paused: %s is unavailable (%s: %s); retrying with backoff up to 30 s",
                self.what,
                "Redis" if outage == "redis" else "the database",
                type(error).__name__,
                str(error).splitlines()[0][:300] if str(error) else "",
            )
        else:
            self.log.debug("%s: still unavailable, next try in %.1f s", self.what, retry_in_s)

    def recovered(self) -> None:
        if self.current is not None:
            self.log.info(
                "%s resumed: %s is available again after %.1f s",
                self.what,
                "Redis" if self.current == "redis" else "the database",
                time.monotonic() - self.since,
            )
            self.current = None


async def pause(stop: asyncio.Event, seconds: float) -> None:
    """Sleep `seconds`, or less when `stop` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


async def repeat_through_outages(
    stop: asyncio.Event, log: logging.Logger, what: str, step: Callable[[], Awaitable[float]]
) -> None:
    """Run `step` until `stop` is set, waiting the seconds it returns between runs. A Redis or
    database outage retries the same step with backoff (logged once); other errors raise."""
    backoff = Backoff()
    outages = OutageLog(log, what)
    while not stop.is_set():
        try:
            wait_s = await step()
        except Exception as error:
            outage = outage_of(error)
            if outage is None:
                raise
            delay = backoff.take()
            outages.failed(outage, error, delay)
            await pause(stop, delay)
            continue
        outages.recovered()
        backoff.reset()
        await pause(stop, wait_s)
