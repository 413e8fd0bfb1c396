"""`backfill token create|list|revoke`: API tokens kept in Redis, seen by every API at once.

These talk to Redis (BACKFILL_REDIS_URL, else the one `backfill dev` runs), not to the API, so
the first admin token can be made before any token exists.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TextIO, TypeVar

from redis.asyncio import Redis
from redis.exceptions import RedisError

from backfill_bus import Names
from backfill_bus.tokens import (
    TokenFormatError,
    TokenNameTakenError,
    create_token,
    list_tokens,
    parse_scope,
    revoke_token,
)
from backfill_cli.settings import without_password

T = TypeVar("T")


class TokenCommandError(Exception):
    """Raised when a token command cannot do what was asked: Redis away, a bad name or scope."""


def create(redis_url: str, namespace: str, scope: str, name: str | None, out: TextIO) -> int:
    async def run(redis: Redis) -> None:
        token, info = await create_token(redis, Names(namespace), parse_scope(scope), name)
        out.write(
            f"created token {info.name!r} with scope {info.scope}; it is shown this once:\n"
            f"{token}\n"
            "send it as `Authorization: Bearer <token>` (the CLI reads BACKFILL_API_TOKEN)\n"
        )

    _with_redis(redis_url, run)
    return 0


def show(redis_url: str, namespace: str, out: TextIO) -> int:
    async def run(redis: Redis) -> None:
        tokens = await list_tokens(redis, Names(namespace))
        if not tokens:
            out.write("no tokens in Redis (tokens from BACKFILL_API_TOKENS are not listed)\n")
            return
        width = max(len(t.name) for t in tokens)
        out.write(f"{'NAME':<{width}}  SCOPE   CREATED\n")
        for token in tokens:
            out.write(f"{token.name:<{width}}  {token.scope:<6}  {token.created}\n")

    _with_redis(redis_url, run)
    return 0


def revoke(redis_url: str, namespace: str, name: str, out: TextIO) -> int:
    async def run(redis: Redis) -> bool:
        return await revoke_token(redis, Names(namespace), name)

    if not _with_redis(redis_url, run):
        raise TokenCommandError(f"no token named {name!r} (see `backfill token list`)")
    out.write(f"revoked token {name!r}: the API refuses it from now on\n")
    return 0


def _with_redis(redis_url: str, action: Callable[[Redis], Awaitable[T]]) -> T:
    async def run() -> T:
        redis = Redis.from_url(redis_url, socket_connect_timeout=5, socket_timeout=10)
        try:
            return await action(redis)
        finally:
            await redis.aclose()

    try:
        return asyncio.run(run())
    except (TokenFormatError, TokenNameTakenError) as exc:
        raise TokenCommandError(str(exc)) from None
    except RedisError as exc:
        raise TokenCommandError(
            f"cannot reach Redis at {without_password(redis_url)} ({exc}):"
            " is `backfill dev` running, or BACKFILL_REDIS_URL set?"
        ) from None
