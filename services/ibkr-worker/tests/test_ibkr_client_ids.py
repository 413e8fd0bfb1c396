"""Client-id leases on real Redis: unique per replica, reused after a crash, 326 avoided."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from backfill_ibkr.client_ids import ClientIdLeases, NoClientIdError


def leases(redis: Redis, namespace: str, owner: str, ttl_s: float = 30) -> ClientIdLeases:
    return ClientIdLeases(redis, f"{namespace}ids", owner, 10, 12, ttl_s, cooldown_s=0.3)


async def test_each_replica_gets_its_own_id(redis: Redis, namespace: str) -> None:
    ids = [await leases(redis, namespace, f"w{n}").acquire() for n in range(3)]
    assert ids == [10, 11, 12]
    with pytest.raises(NoClientIdError, match="all 3 client ids 10-12 are in use"):
        await leases(redis, namespace, "w3").acquire()


async def test_an_id_is_kept_across_reconnects_and_freed_on_release(
    redis: Redis, namespace: str
) -> None:
    first = leases(redis, namespace, "w0")
    assert await first.acquire() == 10
    assert await first.acquire() == 10  # a reconnect keeps the id it holds
    await first.release()
    assert await leases(redis, namespace, "w1").acquire() == 10


async def test_a_crashed_replicas_id_comes_back_after_its_ttl(redis: Redis, namespace: str) -> None:
    assert await leases(redis, namespace, "crashed", ttl_s=0.2).acquire() == 10
    assert await leases(redis, namespace, "other").acquire() == 11
    await asyncio.sleep(0.3)
    assert await leases(redis, namespace, "restarted").acquire() == 10


async def test_an_id_the_gateway_holds_is_set_aside_then_free_again(
    redis: Redis, namespace: str
) -> None:
    lease = leases(redis, namespace, "w0")
    assert await lease.acquire() == 10
    assert await lease.in_use_elsewhere() == 10  # error 326
    assert await lease.acquire() == 11
    await lease.release()
    await asyncio.sleep(0.35)
    assert await leases(redis, namespace, "w1").acquire() == 10


async def test_a_lease_taken_over_after_expiry_is_not_renewed_by_its_old_owner(
    redis: Redis, namespace: str
) -> None:
    old = leases(redis, namespace, "old", ttl_s=0.1)
    assert await old.acquire() == 10
    await asyncio.sleep(0.15)
    assert await leases(redis, namespace, "new").acquire() == 10
    assert await old.renew() is False
    assert old.held is None
