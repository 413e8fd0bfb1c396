"""One request budget for every yahoo-worker replica, in Redis, that backs off on 429.

A token bucket (`yahoo_requests_per_s`, `yahoo_burst`) shared through one Lua script, so N
replicas together stay at the rate one would. A 429 pauses the whole pool (every replica waits
until `paused_until`), doubling the pause on each 429 in a row and halving the rate; successes
bring the rate back up step by step.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from redis.asyncio import Redis

# KEYS: bucket hash. ARGV: now_ms, rate per s, burst. Returns ms to wait (0: a token was taken).
_TAKE = """
local now = tonumber(ARGV[1])
local paused = tonumber(redis.call('HGET', KEYS[1], 'paused_until') or '0')
if paused > now then return paused - now end
local rate = tonumber(redis.call('HGET', KEYS[1], 'rate') or ARGV[2])
local burst = tonumber(ARGV[3])
local tokens = tonumber(redis.call('HGET', KEYS[1], 'tokens') or ARGV[3])
local last = tonumber(redis.call('HGET', KEYS[1], 'last') or ARGV[1])
tokens = math.min(burst, tokens + (now - last) * rate / 1000)
if tokens >= 1 then
  redis.call('HSET', KEYS[1], 'tokens', tokens - 1, 'last', now, 'rate', rate)
  return 0
end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'last', now, 'rate', rate)
return math.ceil((1 - tokens) * 1000 / rate)
"""

# KEYS: bucket hash. ARGV: now_ms, base rate, min rate, max pause ms. Returns the pause in ms.
_RATE_LIMITED = """
local now = tonumber(ARGV[1])
local streak = redis.call('HINCRBY', KEYS[1], 'streak', 1)
local rate = tonumber(redis.call('HGET', KEYS[1], 'rate') or ARGV[2])
rate = math.max(tonumber(ARGV[3]), rate / 2)
local pause = math.min(tonumber(ARGV[4]), 1000 * 2 ^ streak)
redis.call('HSET', KEYS[1], 'rate', rate, 'paused_until', now + pause, 'tokens', 0, 'last', now)
return pause
"""

# A success ends a 429 streak and recovers 10 % of the rate, up to the configured one.
_SUCCEEDED = """
redis.call('HSET', KEYS[1], 'streak', 0)
local rate = tonumber(redis.call('HGET', KEYS[1], 'rate') or ARGV[1])
rate = math.min(tonumber(ARGV[1]), rate * 1.1)
redis.call('HSET', KEYS[1], 'rate', rate)
return tostring(rate)
"""


class PausedError(Exception):
    """Raised while the pool is paused after a 429; `seconds` is how long is left."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"paused for {seconds:.1f} s more")
        self.seconds = seconds


class RequestBudget:
    def __init__(
        self,
        redis: Redis,
        key: str,
        rate_per_s: float,
        burst: int,
        min_rate_per_s: float,
        max_pause_s: float,
    ) -> None:
        self.redis = redis
        self.key = key
        self.rate = rate_per_s
        self.burst = burst
        self.min_rate = min_rate_per_s
        self.max_pause_ms = int(max_pause_s * 1000)
        self.paused_until: float | None = None  # for the heartbeat: epoch seconds
        self.current_rate = rate_per_s  # the pool's rate as last seen, for the heartbeat

    async def take(self) -> None:
        """Wait for a token (at most a few seconds); raise PausedError while the pool is paused.

        A pause can outlast a request timeout, so it is not waited out here: the caller turns it
        into a rate-limited outcome whose retry waits, cancellably, for the pause to end.
        """
        while True:
            state: Any = await self.redis.hget(self.key, "paused_until")
            paused_ms = int(float(state)) - _now_ms() if state else 0
            if paused_ms > 0:
                self.paused_until = time.time() + paused_ms / 1000
                raise PausedError(paused_ms / 1000)
            wait_ms: Any = await self.redis.eval(
                _TAKE, 1, self.key, _now_ms(), self.rate, self.burst
            )
            if int(wait_ms) <= 0:
                self.paused_until = None
                return
            await asyncio.sleep(min(int(wait_ms) / 1000, 2.0))

    async def rate_limited(self) -> float:
        """Record a 429 for the whole pool; returns the pause in seconds."""
        pause_ms: Any = await self.redis.eval(
            _RATE_LIMITED, 1, self.key, _now_ms(), self.rate, self.min_rate, self.max_pause_ms
        )
        self.paused_until = time.time() + int(pause_ms) / 1000
        self.current_rate = max(self.min_rate, self.current_rate / 2)
        return int(pause_ms) / 1000

    async def succeeded(self) -> None:
        rate: Any = await self.redis.eval(_SUCCEEDED, 1, self.key, self.rate)
        self.current_rate = float(rate)

    async def state(self) -> dict[str, float]:
        raw: Any = await self.redis.hgetall(self.key)
        return {key.decode(): float(value) for key, value in raw.items()}


def _now_ms() -> int:
    return int(time.time() * 1000)
