"""The one-shot migration waits, for a bounded time, for a database that is not up yet.

At boot it may race the server (compose's healthcheck passing a moment early, a restart): it
retries with backoff, logs each wait, and gives up with a clear error after its bound.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterator
from uuid import uuid4

import pytest
from sqlalchemy import inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from backfill_readmodel.engine import create_engine
from backfill_readmodel.migrate import DatabaseUnavailableError, upgrade, wait_for_database
from tests.support.databases import asyncpg_dsn, drop_database, execute_sql
from tests.support.proxy import TcpProxy
from tests.support.servers import free_port, postgres_admin_url, postgres_required


class Waits(logging.Handler):
    """The migration's "not reachable yet" lines, and an event set by the first one."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []
        self.first = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if "not reachable yet" in record.getMessage():
            self.lines.append(record.getMessage())
            self.first.set()


@pytest.fixture
def waits() -> Iterator[Waits]:
    handler = Waits()
    logger = logging.getLogger("backfill.migrate")
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.WARNING)
    yield handler
    logger.setLevel(previous)
    logger.removeHandler(handler)


async def test_it_gives_up_after_its_bound_with_a_clear_error(waits: Waits) -> None:
    port = free_port()  # nothing listens there
    engine = create_engine(f"postgresql+asyncpg://backfill:s3cret@127.0.0.1:{port}/backfill")
    began = time.monotonic()
    try:
        with pytest.raises(DatabaseUnavailableError) as raised:
            await wait_for_database(engine, within_s=0.8, first_delay_s=0.1)
    finally:
        await engine.dispose()
    took = time.monotonic() - began
    assert 0.8 <= took < 3, took
    message = str(raised.value)
    assert f"127.0.0.1:{port}/backfill within 0.8 s" in message
    assert "ConnectionRefusedError" in message
    assert "s3cret" not in message
    # Each wait is logged, with backoff: 0.1 s, 0.2 s, 0.4 s, then what is left.
    assert len(waits.lines) >= 3, waits.lines
    assert "retrying in 0.1 s" in waits.lines[0]
    assert "retrying in 0.2 s" in waits.lines[1]
    assert all("s3cret" not in line for line in waits.lines)


@pytest.fixture
def admin() -> str:
    url = postgres_admin_url()
    if url is None:
        if postgres_required():
            pytest.fail("BACKFILL_TEST_REQUIRE_POSTGRES is set but BACKFILL_TEST_POSTGRES_URL not")
        pytest.skip("needs PostgreSQL: set BACKFILL_TEST_POSTGRES_URL")
    return url


@pytest.fixture
async def empty_postgres_database(admin: str) -> AsyncIterator[str]:
    name = f"backfill_wait_{uuid4().hex[:12]}"
    await execute_sql(asyncpg_dsn(admin), f'CREATE DATABASE "{name}"')
    try:
        yield make_url(admin).set(database=name).render_as_string(hide_password=False)
    finally:
        await drop_database(asyncpg_dsn(admin), name)


@pytest.mark.postgres
async def test_it_migrates_once_the_server_comes_up(
    empty_postgres_database: str, waits: Waits
) -> None:
    url = make_url(empty_postgres_database)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)  # down: connections refused
    engine = create_engine(
        url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    )
    try:
        waiting = asyncio.create_task(wait_for_database(engine, within_s=20, first_delay_s=0.1))
        await asyncio.wait_for(waits.first.wait(), timeout=10)  # it tried, and waits
        assert not waiting.done()
        await proxy.up()
        await asyncio.wait_for(waiting, timeout=10)
        await upgrade(engine)
        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda c: inspect(c).get_table_names())
        assert {"alembic_version", "jobs"} <= set(tables)
    finally:
        await engine.dispose()
        await proxy.close()


@pytest.mark.postgres
async def test_a_refused_password_fails_at_once(admin: str, waits: Waits) -> None:
    """Waiting cannot fix a wrong password: no retries, the server's own error."""
    wrong = make_url(admin).set(password="not-the-password")
    engine = create_engine(wrong.render_as_string(hide_password=False))
    began = time.monotonic()
    try:
        with pytest.raises(DBAPIError, match="password authentication failed"):
            await wait_for_database(engine, within_s=30)
    finally:
        await engine.dispose()
    assert time.monotonic() - began < 5
    assert waits.lines == []
