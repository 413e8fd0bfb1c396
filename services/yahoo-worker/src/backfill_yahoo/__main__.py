"""`python -m backfill_yahoo` (also `backfill-yahoo-worker`): a worker hosting the yahoo source."""

from __future__ import annotations

from redis.asyncio import Redis

from backfill_bus import Names
from backfill_worker import run_worker_with_redis
from backfill_yahoo.budget import RequestBudget
from backfill_yahoo.client import YahooClient
from backfill_yahoo.settings import YahooSettings
from backfill_yahoo.source import YahooSource


def build_source(settings: YahooSettings, redis: Redis) -> YahooSource:
    budget = RequestBudget(
        redis,
        Names(settings.redis_namespace).source_key("yahoo", "budget"),
        settings.yahoo_requests_per_s,
        settings.yahoo_burst,
        settings.yahoo_min_requests_per_s,
        settings.yahoo_max_pause_s,
    )
    return YahooSource(YahooClient(settings), budget)


def main() -> None:
    run_worker_with_redis(YahooSettings(), build_source, service="yahoo-worker")


if __name__ == "__main__":
    main()
