"""One request budget for every replica, in Redis: a shared rate, and a pool-wide pause on 429."""

from __future__ import annotations

import time

import pytest
from redis.asyncio import Redis

from backfill_yahoo.budget import PausedError, RequestBudget


def _budget(redis: Redis, key: str) -> RequestBudget:
    return RequestBudget(redis, key, rate_per_s=10.0, burst=2, min_rate_per_s=1.0, max_pause_s=8.0)


async def test_replicas_share_one_rate(redis: Redis, namespace: str) -> None:
    first, second = _budget(redis, f"{namespace}b"), _budget(redis, f"{namespace}b")
    started = time.monotonic()
    for budget in (first, second, first, second, first, second):
        await budget.take()
    elapsed = time.monotonic() - started
    # A burst of 2, then 10 a second shared: 4 more tokens take about 0.4 s, not 0.2 s.
    assert 0.3 <= elapsed < 1.0, elapsed


async def test_a_429_pauses_every_replica_and_doubles_while_it_repeats(
    redis: Redis, namespace: str
) -> None:
    first, second = _budget(redis, f"{namespace}b"), _budget(redis, f"{namespace}b")
    assert await first.rate_limited() == 2.0
    with pytest.raises(PausedError) as paused:
        await second.take()
    assert 1.5 < paused.value.seconds <= 2.0
    assert second.paused_until is not None
    assert await second.rate_limited() == 4.0  # a second 429 in a row
    assert await first.rate_limited() == 8.0
    assert await first.rate_limited() == 8.0  # capped at max_pause_s
    state = await first.state()
    assert state["rate"] == 1.0  # halved down to the floor
    await redis.hset(f"{namespace}b", "paused_until", 0)
    await first.succeeded()
    state = await first.state()
    assert state["streak"] == 0
    assert state["rate"] == pytest.approx(1.1)  # recovers step by step
    await first.take()
    assert first.paused_until is None
