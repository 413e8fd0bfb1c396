"""Schema migrations (Alembic), run before anything writes: see __main__."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS = Path(__file__).parent / "migrations"
# SQLSTATE classes worth waiting out: connection exceptions (08) and a server starting or
# shutting down (57P, e.g. 57P03 "the database system is starting up"). A refused password
# (28P01) or a missing database (3D000) will not fix itself: those fail at once.
_TRANSIENT_SQLSTATES = ("08", "57P")
log = logging.getLogger("backfill.migrate")


class DatabaseUnavailableError(Exception):
    """Raised when the database accepted no connection within the migration's wait: check that
    the server is up and that BACKFILL_DATABASE_URL names it (host, port, user, password)."""


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    def _upgrade(connection: Connection) -> None:
        command.upgrade(alembic_config(connection), revision)

    async with engine.begin() as connection:
        await connection.run_sync(_upgrade)


async def wait_for_database(
    engine: AsyncEngine, within_s: float, *, first_delay_s: float = 0.5, max_delay_s: float = 5.0
) -> None:
    """Connect, retrying with doubling delays for up to `within_s` seconds.

    At boot the migration may start while the server is still coming up (its name not in DNS
    yet, the port closed, or "the database system is starting up"): waiting a little beats
    failing the whole stack.
    """
    deadline = time.monotonic() + within_s
    delay = first_delay_s
    while True:
        try:
            async with asyncio.timeout(max(0.1, deadline - time.monotonic())):
                async with engine.connect() as connection:
                    await connection.execute(text("SELECT 1"))
            return
        except (OSError, TimeoutError, DBAPIError) as error:
            if not _transient(error):
                raise
            left = deadline - time.monotonic()
            where = engine.url.render_as_string(hide_password=True)
            if left <= 0:
                raise DatabaseUnavailableError(
                    f"no connection to {where} within {within_s:g} s: {_reason(error)}"
                ) from error
            pause = min(delay, left)
            log.warning(
                "database %s not reachable yet (%s): retrying in %.1f s",
                where,
                _reason(error),
                pause,
            )
            await asyncio.sleep(pause)
            delay = min(delay * 2, max_delay_s)


def _transient(error: BaseException) -> bool:
    if not isinstance(error, DBAPIError):
        return True  # refused, unresolvable or timed out: the server is not there yet
    sqlstate = getattr(error.orig, "sqlstate", None) or ""
    return not sqlstate or sqlstate.startswith(_TRANSIENT_SQLSTATES)


def _reason(error: BaseException) -> str:
    if isinstance(error, DBAPIError) and error.orig is not None:
        error = error.orig
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
