"""Running a worker as a process: build it, run until SIGTERM or Ctrl-C, stop it cleanly."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable

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


def run_worker(make_source: Callable[[], Source]) -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(serve(WorkerSettings(), make_source()))
