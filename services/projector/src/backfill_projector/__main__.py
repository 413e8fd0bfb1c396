"""`python -m backfill_projector run|rebuild` (also installed as `backfill-projector`)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
import sys

from redis.asyncio import Redis

from backfill_bus import Names
from backfill_bus.liveness import Liveness
from backfill_bus.logs import configure_logging
from backfill_bus.metrics import MetricsPortInUseError, MetricsServer
from backfill_projector.maintenance import Maintenance
from backfill_projector.metrics import ProjectorMetrics, metrics_server
from backfill_projector.projector import Projector
from backfill_projector.scheduler import Scheduler
from backfill_projector.settings import ProjectorSettings
from backfill_projector.webhooks import WebhookNotifier
from backfill_readmodel.engine import create_engine

log = logging.getLogger("backfill.projector")
EXIT_STARTUP_ERROR = 2


async def _main(command: str, settings: ProjectorSettings) -> None:
    engine = create_engine(settings.database_url)
    redis = Redis.from_url(settings.redis_url)
    names = Names(settings.redis_namespace)
    metrics = ProjectorMetrics()
    projector = Projector(
        engine,
        redis,
        names,
        batch_size=settings.projector_batch_size,
        block_ms=settings.projector_block_ms,
        liveness=Liveness(settings.liveness_file),
        metrics=metrics,
    )
    server: MetricsServer | None = None
    producer = f"projector@{socket.gethostname()}-{os.getpid()}"
    maintenance = Maintenance(
        engine,
        redis,
        names,
        producer=producer,
        interval_s=settings.cleanup_interval_s,
        job_retention_days=settings.job_retention_days,
        event_retention_days=settings.event_retention_days,
    )
    try:
        if command == "rebuild":
            count = await projector.rebuild()
            print(f"rebuilt every projection from {count} events")
            return
        if settings.metrics_port:
            server = metrics_server(
                metrics, redis, names, settings.metrics_host, settings.metrics_port
            )
            await server.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        # One fails, both stop: a projector that stopped loudly takes its schedule with it.
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(projector.run(stop))
            tasks.create_task(maintenance.run(stop))
            tasks.create_task(
                Scheduler(redis, names, producer=producer, poll_s=settings.schedule_poll_s).run(
                    stop
                )
            )
            tasks.create_task(
                WebhookNotifier(
                    engine,
                    redis,
                    names,
                    producer,
                    timeout_s=settings.webhook_timeout_s,
                    max_tries=settings.webhook_max_tries,
                    retry_base_s=settings.webhook_retry_base_s,
                ).run(stop)
            )
    finally:
        if server is not None:
            await server.stop()
        await redis.aclose()
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(prog="backfill-projector")
    parser.add_argument(
        "command",
        nargs="?",
        default="run",
        choices=["run", "rebuild"],
        help="run: fold the event log continuously (and run the scheduled maintenance);"
        " rebuild: rebuild the projections from the log (bars are kept)",
    )
    args = parser.parse_args()
    configure_logging("projector")
    try:
        asyncio.run(_main(args.command, ProjectorSettings()))
    except MetricsPortInUseError as error:  # a clear line, not a traceback
        log.error("not starting: %s", error)
        sys.exit(EXIT_STARTUP_ERROR)


if __name__ == "__main__":
    main()
