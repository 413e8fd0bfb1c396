"""Running a worker as a process: build it, run until SIGTERM or Ctrl-C, stop it cleanly."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from redis.asyncio import Redis

from backfill_bus.logs import configure_logging
from backfill_bus.metrics import MetricsPortInUseError
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


def run_worker(make_source: Callable[[], Source], service: str = "worker") -> None:
    """`service` names the process in its log lines (e.g. `sim-worker`)."""
    configure_logging(service)
    _run(serve(WorkerSettings(), make_source()))


def run_worker_with_redis(
    settings: S, build_source: Callable[[S, Redis], Source], service: str = "worker"
) -> None:
    """For a source that keeps state in Redis (a budget, leases): one client, closed at exit."""
    configure_logging(service)

    async def main() -> None:
        redis = Redis.from_url(settings.redis_url)
        try:
            await serve(settings, build_source(settings, redis))
        finally:
            await redis.aclose()

    _run(main())


EXIT_STARTUP_ERROR = 2


def _run(main: Coroutine[Any, Any, None]) -> None:
    try:
        asyncio.run(main)
    except MetricsPortInUseError as error:  # a clear line, not a traceback
        logging.getLogger("backfill_worker").error("not starting: %s", error)
        sys.exit(EXIT_STARTUP_ERROR)
