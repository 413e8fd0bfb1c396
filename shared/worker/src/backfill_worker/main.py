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

log = logging.getLogger("backfill_worker")

EXIT_STARTUP_ERROR = 2
# The command subscriber stopped and did not come back: only a new process subscribes again.
EXIT_SUBSCRIBER_LOST = 3


async def serve(settings: WorkerSettings, source: Source) -> int:
    """Run a worker until SIGTERM or Ctrl-C; returns the process's exit code."""
    worker = Worker(settings, source)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    return await run_until_stopped(worker, stop)


async def run_until_stopped(worker: Worker, stop: asyncio.Event) -> int:
    """Start `worker`; stop it once `stop` is set (exit code 0) or once its command subscriber
    is lost (EXIT_SUBSCRIBER_LOST). Either way the running job is handed back the same way.

    A lost subscriber ends the process rather than leaving it up: its heartbeats and liveness
    file stop, but Docker restarts only containers that exit, never unhealthy ones (outside
    Swarm), and `restart: unless-stopped` or `backfill dev` restart a worker that exits.
    """
    await worker.start()
    lost = asyncio.create_task(worker.until_subscriber_lost(), name="subscriber-watch")
    asked = asyncio.create_task(stop.wait(), name="stop-request")
    code = 0
    try:
        await asyncio.wait({lost, asked}, return_when=asyncio.FIRST_COMPLETED)
        if lost.done() and not asked.done():
            lost.result()
            log.error(
                "the subscriber of %s stopped consuming %g s ago: stopping the worker and "
                "exiting with code %d, so that it is restarted",
                worker.command_stream,
                worker.settings.subscriber_lost_grace_s,
                EXIT_SUBSCRIBER_LOST,
            )
            code = EXIT_SUBSCRIBER_LOST
    finally:
        for task in (lost, asked):
            task.cancel()
        await asyncio.gather(lost, asked, return_exceptions=True)
        await worker.stop()
    return code


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

    async def main() -> int:
        redis = Redis.from_url(settings.redis_url)
        try:
            return await serve(settings, build_source(settings, redis))
        finally:
            await redis.aclose()

    _run(main())


def _run(main: Coroutine[Any, Any, int]) -> None:
    try:
        code = asyncio.run(main)
    except MetricsPortInUseError as error:  # a clear line, not a traceback
        log.error("not starting: %s", error)
        sys.exit(EXIT_STARTUP_ERROR)
    if code:
        sys.exit(code)
