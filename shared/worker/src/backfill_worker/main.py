"""Running a worker as a process: build it, run until SIGTERM or Ctrl-C, stop it cleanly."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from typing import TypeVar

from redis.asyncio import Redis

from backfill_worker.settings import WorkerSettings
from backfill_worker.source import Source
from backfill_worker.worker import Worker


async def serve(settings: WorkerSettings, source: Source) -> None:
    worker = Worker(settings, source)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await worker.start()
    try:
        await stop.wait()
    finally:
        await worker.stop()


S = TypeVar("S", bound=WorkerSettings)


def _configure_logging() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def run_worker(make_source: Callable[[], Source]) -> None:
    _configure_logging()
    asyncio.run(serve(WorkerSettings(), make_source()))


def run_worker_with_redis(settings: S, build_source: Callable[[S, Redis], Source]) -> None:
    """For a source that keeps state in Redis (a budget, leases): one client, closed at exit."""
    _configure_logging()

    async def main() -> None:
        redis = Redis.from_url(settings.redis_url)
        try:
            await serve(settings, build_source(settings, redis))
        finally:
            await redis.aclose()

    asyncio.run(main())
