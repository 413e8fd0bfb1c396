"""The whole pipeline in the test's event loop: API (over ASGI), projector and sim worker.

Every part is the real one, built by its own composition root, on a real Redis and database;
only the processes are folded into one, so a test can wait on conditions precisely.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from backfill_api.app import create_app
from backfill_api.settings import ApiSettings
from backfill_bus import Names
from backfill_projector.projector import Projector
from backfill_readmodel.engine import create_engine
from backfill_sim import SimSource
from backfill_worker import Source, Worker, WorkerSettings

TERMINAL = {"succeeded", "failed", "cancelled"}
# The test API accepts these (BACKFILL_API_TOKENS); `Stack.api` sends the admin one.
ADMIN_TOKEN = "test-admin-token-0123456789"
READ_TOKEN = "test-read-token-0123456789"
SUBMIT_TOKEN = "test-submit-token-0123456789"
TEST_TOKENS = f"admin:{ADMIN_TOKEN},read:{READ_TOKEN},submit:{SUBMIT_TOKEN}"


@dataclass
class Stack:
    api: httpx.AsyncClient
    redis: Redis
    engine: AsyncEngine
    names: Names
    redis_url: str
    database_url: str
    workers: list[Worker]
    projector: Projector
    transport: httpx.AsyncBaseTransport | None = None

    def client(self, token: str | None = None) -> httpx.AsyncClient:
        """Another client of the same API, sending `token` (None: no Authorization header)."""
        assert self.transport is not None
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        return httpx.AsyncClient(transport=self.transport, base_url="http://api", headers=headers)

    async def submit(self, **job: Any) -> str:
        response = await self.api.post("/api/v1/jobs", json=job)
        assert response.status_code == 202, response.text
        job_id: str = response.json()["job_id"]
        return job_id

    async def wait_job(
        self, job_id: str, statuses: set[str] | None = None, timeout: float = 60
    ) -> dict[str, Any]:
        """Poll the API until the job reaches one of `statuses` (default: any terminal one)."""
        wanted = statuses or TERMINAL
        deadline = time.monotonic() + timeout
        last: dict[str, Any] = {}
        while time.monotonic() < deadline:
            response = await self.api.get(f"/api/v1/jobs/{job_id}")
            if response.status_code == 200:
                last = response.json()
                if last["status"] in wanted:
                    return last
            await asyncio.sleep(0.05)
        state = await self.diagnose()
        raise AssertionError(
            f"job {job_id} did not reach {wanted} in {timeout}s; last: {last}; streams: {state}"
        )

    async def diagnose(self) -> dict[str, Any]:
        """Stream lengths, consumer groups and pending entries: what a stuck test needs to show."""
        state: dict[str, Any] = {}
        for stream in (self.names.command_stream("sim"), self.names.events, self.names.dlq):
            if not await self.redis.exists(stream):
                state[stream] = "missing"
                continue
            groups = await self.redis.xinfo_groups(stream)
            state[stream] = {
                "length": await self.redis.xlen(stream),
                "groups": [
                    {k: g[k] for k in ("name", "consumers", "pending", "last-delivered-id")}
                    for g in groups
                ],
            }
        state["workers_running"] = [w.broker.running for w in self.workers]
        return state

    async def start_worker(
        self, worker_id: str, *, source: Source | None = None, **settings: Any
    ) -> Worker:
        """A worker of `source` (default: the sim) with test-friendly delays."""
        worker = Worker(
            WorkerSettings(
                **{
                    "redis_url": self.redis_url,
                    "redis_namespace": self.names.namespace,
                    "worker_id": worker_id,
                    "retry_base_delay_s": 0.05,
                    "retry_max_delay_s": 0.2,
                    "heartbeat_interval_s": 1.0,
                    "poll_interval_ms": 100,
                    # It reads what is stored, as a deployed worker does (job modes).
                    "database_url": self.database_url,
                    **settings,
                }
            ),
            source or SimSource(),
        )
        await worker.start()
        self.workers.append(worker)
        return worker


async def wait_until(condition: Any, timeout: float = 30, message: str = "condition") -> Any:
    """Await `condition()` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await condition()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"{message} not met within {timeout}s")


@contextlib.asynccontextmanager
async def running_stack(
    redis_url: str,
    database_url: str,
    namespace: str,
    *,
    with_worker: bool = True,
    with_projector: bool = True,
    **api_settings: Any,
) -> AsyncIterator[Stack]:
    """The pipeline; `api_settings` override the API's (by default it accepts TEST_TOKENS).

    Without the projector running, a test folds the log itself with `stack.projector.step()`.
    """
    names = Names(namespace)
    redis = Redis.from_url(redis_url)
    engine = create_engine(database_url)
    projector = Projector(engine, redis, names, block_ms=50)
    stop = asyncio.Event()
    projector_task = asyncio.create_task(projector.run(stop) if with_projector else stop.wait())
    settings = {"api_tokens": TEST_TOKENS, **api_settings}
    app = create_app(
        ApiSettings(
            redis_url=redis_url, redis_namespace=namespace, database_url=database_url, **settings
        )
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://api", headers=headers
        ) as client:
            stack = Stack(
                client, redis, engine, names, redis_url, database_url, [], projector, transport
            )
            if with_worker:
                await stack.start_worker(f"{namespace}worker-1")
            try:
                yield stack
            finally:
                for worker in stack.workers:
                    await worker.stop()
                stop.set()
                await asyncio.wait_for(projector_task, timeout=10)
                await redis.aclose()
                await engine.dispose()
