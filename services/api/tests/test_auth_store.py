"""Tokens kept in Redis: made once, listed without the token, revoked by name (real Redis)."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from backfill_bus import Names
from backfill_bus.tokens import (
    TokenNameTakenError,
    create_token,
    digest_of,
    find_token,
    list_tokens,
    revoke_token,
)


async def test_a_token_is_kept_only_as_its_digest(redis: Redis, namespace: str) -> None:
    names = Names(namespace)
    token, info = await create_token(redis, names, "submit", "ci")
    assert len(token) >= 40
    assert (info.name, info.scope) == ("ci", "submit")
    assert info.created.endswith("+00:00")
    stored = await redis.hgetall(f"{namespace}api-tokens")
    assert list(stored) == [digest_of(token).encode()]
    assert token not in repr(stored)
    assert await find_token(redis, names, token) == info
    assert await find_token(redis, names, token + "x") is None


async def test_tokens_are_listed_without_themselves_and_names_are_unique(
    redis: Redis, namespace: str
) -> None:
    names = Names(namespace)
    first, _ = await create_token(redis, names, "read", "dashboard")
    second, generated = await create_token(redis, names, "admin")
    assert generated.name.startswith("admin-")
    with pytest.raises(TokenNameTakenError, match="a token named 'dashboard' exists"):
        await create_token(redis, names, "admin", "dashboard")
    listed = await list_tokens(redis, names)
    assert sorted((t.name, t.scope) for t in listed) == sorted(
        [("dashboard", "read"), (generated.name, "admin")]
    )
    assert first not in repr(listed)
    assert second not in repr(listed)
    # The refused duplicate changed nothing: the first token still names 'dashboard'.
    found = await find_token(redis, names, first)
    assert found is not None
    assert found.scope == "read"


async def test_revoking_removes_the_token_and_frees_its_name(redis: Redis, namespace: str) -> None:
    names = Names(namespace)
    token, _ = await create_token(redis, names, "submit", "old")
    assert await revoke_token(redis, names, "old")
    assert not await revoke_token(redis, names, "old")
    assert await find_token(redis, names, token) is None
    assert await list_tokens(redis, names) == []
    again, _ = await create_token(redis, names, "read", "old")
    assert again != token


async def test_a_hand_edited_entry_grants_nothing(redis: Redis, namespace: str) -> None:
    names = Names(namespace)
    await redis.hset(f"{namespace}api-tokens", digest_of("forged-token-1234567"), "not json")
    await redis.hset(
        f"{namespace}api-tokens",
        digest_of("forged-token-7654321"),
        '{"name": "x", "scope": "root", "created": ""}',
    )
    assert await find_token(redis, names, "forged-token-1234567") is None
    assert await find_token(redis, names, "forged-token-7654321") is None
    assert await list_tokens(redis, names) == []
