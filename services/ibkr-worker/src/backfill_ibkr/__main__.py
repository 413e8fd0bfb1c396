"""`python -m backfill_ibkr` (also `backfill-ibkr-worker`): a worker hosting the ibkr source."""

from __future__ import annotations

import asyncio
import logging

from redis.asyncio import Redis

from backfill_bus import Names
from backfill_ibkr.connection import Connection
from backfill_ibkr.library import load_library
from backfill_ibkr.pacing import PacingGovernor, parse_rules
from backfill_ibkr.settings import IbkrSettings
from backfill_ibkr.source import IbkrSource
from backfill_worker import serve


def build_source(settings: IbkrSettings, redis: Redis) -> IbkrSource:
    library = load_library(settings.ibkr_library)
    governor = PacingGovernor(
        redis,
        Names(settings.redis_namespace).source_key("ibkr", f"pacing:{settings.login}"),
        parse_rules(settings.ibkr_pacing_rules),
        settings.ibkr_pacing_scale,
        settings.ibkr_pacing_margin_s,
        settings.ibkr_max_open_requests,
    )
    return IbkrSource(settings, library, Connection(settings, redis, library), governor)


async def _main(settings: IbkrSettings) -> None:
    redis = Redis.from_url(settings.redis_url)
    try:
        await serve(settings, build_source(settings, redis))
    finally:
        await redis.aclose()


def main() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(_main(IbkrSettings()))


if __name__ == "__main__":
    main()
