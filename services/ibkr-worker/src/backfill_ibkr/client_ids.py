"""Client ids leased in Redis: every replica on one gateway gets its own, even after crashes.

IB Gateway refuses a second connection with an id in use (error 326). Each worker holds a lease
`<prefix>:<id>` = its worker id, with a TTL it renews while connected; a crashed worker's lease
expires and the id is free again. An id the gateway still holds (after a crash it may, for a
while) is set aside for a cool-down and another one is taken.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

# Renew only our own lease: a lease that expired and was taken by another worker is theirs.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_BLOCKED = "blocked"


class NoClientIdError(Exception):
    """Every id of the range is leased or cooling down."""


class ClientIdLeases:
    def __init__(
        self,
        redis: Redis,
        prefix: str,
        owner: str,
        first: int,
        last: int,
        ttl_s: float,
        cooldown_s: float = 60.0,
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.owner = owner
        self.ids = range(first, last + 1)
        self.ttl_ms = int(ttl_s * 1000)
        self.cooldown_ms = int(cooldown_s * 1000)
        self.held: int | None = None

    def _key(self, client_id: int) -> str:
        return f"{self.prefix}:{client_id}"

    async def acquire(self) -> int:
        """Lease the lowest free id (the one already held, if it still is ours)."""
        if self.held is not None and await self.renew():
            return self.held
        for client_id in self.ids:
            taken: Any = await self.redis.set(
                self._key(client_id), self.owner, nx=True, px=self.ttl_ms
            )
            if taken:
                self.held = client_id
                return client_id
        raise NoClientIdError(
            f"all {len(self.ids)} client ids {self.ids.start}-{self.ids.stop - 1} are in use; "
            "widen BACKFILL_IBKR_CLIENT_ID_MIN/MAX or run fewer replicas"
        )

    async def renew(self) -> bool:
        if self.held is None:
            return False
        renewed: Any = await self.redis.eval(
            _RENEW, 1, self._key(self.held), self.owner, self.ttl_ms
        )
        if not renewed:
            self.held = None
        return bool(renewed)

    async def in_use_elsewhere(self) -> int:
        """Error 326: the gateway holds our id for another client. Set it aside, return it."""
        client_id = self.held
        assert client_id is not None
        await self.redis.set(self._key(client_id), _BLOCKED, px=self.cooldown_ms)
        self.held = None
        return client_id

    async def release(self) -> None:
        if self.held is not None:
            await self.redis.eval(_RELEASE, 1, self._key(self.held), self.owner)
            self.held = None
