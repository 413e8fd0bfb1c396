"""Fixtures shared by every test folder (registered by the root conftest.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.databases import PostgresDatabases, migrated_engine
from tests.support.servers import RedisServer, postgres_admin_url, postgres_required

_FIGURES = pytest.StashKey[list[str]]()


@pytest.fixture
def report_figure(pytestconfig: pytest.Config) -> Callable[[str], None]:
    """Print a measured figure (e.g. a fuzz's case count) in the run's closing summary, so a
    CI log shows it even when the test passes and its own output is captured."""
    return pytestconfig.stash.setdefault(_FIGURES, []).append


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    figures = config.stash.get(_FIGURES, [])
    if figures:
        terminalreporter.section("figures measured by the tests")
        for line in figures:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url


@pytest.fixture
def namespace() -> str:
    """A key prefix of this test's own: tests share one Redis server but never its streams."""
    return f"t{uuid4().hex[:10]}:"


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture(scope="session")
def postgres_databases() -> Iterator[PostgresDatabases | None]:
    url = postgres_admin_url()
    if url is None:
        if postgres_required():
            pytest.fail(
                "BACKFILL_TEST_REQUIRE_POSTGRES is set but BACKFILL_TEST_POSTGRES_URL is not"
            )
        yield None
        return
    databases = PostgresDatabases(url)
    yield databases
    asyncio.run(databases.drop_template())


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database_url(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    postgres_databases: PostgresDatabases | None,
) -> AsyncIterator[str]:
    """A fresh, migrated database: SQLite (the embedded default) and PostgreSQL (production)."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'backfill.db'}"
        engine = await migrated_engine(url, migrate=True)
        await engine.dispose()
        yield url
        return
    if postgres_databases is None:
        pytest.skip("PostgreSQL tests need BACKFILL_TEST_POSTGRES_URL (CI sets it and requires it)")
    url = await postgres_databases.create()
    yield url
    await postgres_databases.drop(url)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = await migrated_engine(database_url, migrate=False)
    yield engine
    await engine.dispose()
