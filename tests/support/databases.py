"""One fresh, migrated database per test, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
from uuid import uuid4

import asyncpg
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from backfill_readmodel.engine import create_engine
from backfill_readmodel.migrate import upgrade


def asyncpg_dsn(url: str, database: str | None = None) -> str:
    """The SQLAlchemy URL as asyncpg takes it (password kept), optionally on another database."""
    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


_END_THE_OTHER_CONNECTIONS = """
SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid()
"""


async def end_other_connections(engine: AsyncEngine) -> int:
    """What a PostgreSQL restart does to every connection to the database but the caller's:
    end them (the projector's held one, any the pools keep); how many were ended."""
    async with engine.connect() as conn:
        ended = await conn.scalar(text(_END_THE_OTHER_CONNECTIONS))
    await asyncio.sleep(0.2)  # the closed sockets reach their clients
    return int(ended)


class PostgresDatabases:
    """Creates each test's database from a template migrated once per session (fast)."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        # Per session: runs by other users or earlier sessions never share (or block) it.
        self.template = f"backfill_template_{uuid4().hex[:12]}"
        self._template_ready = False
        self._lock = asyncio.Lock()

    async def _execute(self, sql: str) -> None:
        await execute_sql(asyncpg_dsn(self.admin_url), sql)

    async def _prepare_template(self) -> None:
        async with self._lock:
            if self._template_ready:
                return
            await self._execute(f'CREATE DATABASE "{self.template}"')
            engine = create_engine(self.url_of(self.template))
            try:
                await upgrade(engine)
            finally:
                await engine.dispose()
            self._template_ready = True

    def url_of(self, database: str) -> str:
        return make_url(self.admin_url).set(database=database).render_as_string(hide_password=False)

    async def create(self) -> str:
        await self._prepare_template()
        name = f"backfill_test_{uuid4().hex[:12]}"
        await self._execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        return self.url_of(name)

    async def drop(self, url: str) -> None:
        name = make_url(url).database
        await drop_database(asyncpg_dsn(self.admin_url), str(name))

    async def drop_template(self) -> None:
        if self._template_ready:
            await drop_database(asyncpg_dsn(self.admin_url), self.template)


async def execute_sql(dsn: str, sql: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def drop_database(admin_dsn: str, name: str, tries: int = 10) -> None:
    """DROP DATABASE, ending the test's leftover connections.

    FORCE may not end a backend of another role, such as an autovacuum worker that started on
    the test's many rows (a CI role without pg_signal_backend); a plain DROP cancels autovacuum
    itself, so that is the retry, until the worker has gone.
    """
    conn = await asyncpg.connect(admin_dsn)
    try:
        for attempt in range(tries):
            force = " WITH (FORCE)" if attempt == 0 else ""
            try:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}"{force}')
                return
            except (asyncpg.InsufficientPrivilegeError, asyncpg.ObjectInUseError):
                if attempt == tries - 1:
                    raise
                await asyncio.sleep(0.5)
    finally:
        await conn.close()


async def migrated_engine(url: str, *, migrate: bool) -> AsyncEngine:
    engine = create_engine(url)
    if migrate:
        await upgrade(engine)
    return engine
