"""`python -m backfill_projector run|rebuild` (also installed as `backfill-projector`)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from redis.asyncio import Redis

from backfill_bus import Names
from backfill_projector.projector import Projector
from backfill_projector.settings import ProjectorSettings
from backfill_readmodel.engine import create_engine

log = logging.getLogger("backfill.projector")


async def _main(command: str, settings: ProjectorSettings) -> None:
    engine = create_engine(settings.database_url)
    redis = Redis.from_url(settings.redis_url)
    projector = Projector(
        engine,
        redis,
        Names(settings.redis_namespace),
        batch_size=settings.projector_batch_size,
        block_ms=settings.projector_block_ms,
    )
    try:
        if command == "rebuild":
            count = await projector.rebuild()
            print(f"rebuilt every projection from {count} events")
            return
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await projector.run(stop)
    finally:
        await redis.aclose()
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(prog="backfill-projector")
    parser.add_argument(
        "command",
        nargs="?",
        default="run",
        choices=["run", "rebuild"],
        help="run: fold the event log continuously; rebuild: rebuild every table from the log",
    )
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(_main(args.command, ProjectorSettings()))


if __name__ == "__main__":
    main()
