"""`python -m backfill_ibkr` (also `backfill-ibkr-worker`): a worker hosting the ibkr source."""

from __future__ import annotations

from redis.asyncio import Redis

from backfill_bus import Names
from backfill_ibkr.connection import Connection
from backfill_ibkr.library import load_library
from backfill_ibkr.pacing import PacingGovernor, parse_rules
from backfill_ibkr.settings import IbkrSettings
from backfill_ibkr.source import IbkrSource
from backfill_worker import run_worker_with_redis


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


def main() -> None:
    run_worker_with_redis(IbkrSettings(), build_source, service="ibkr-worker")


if __name__ == "__main__":
    main()
