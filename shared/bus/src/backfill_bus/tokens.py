"""API tokens: scopes, the `BACKFILL_API_TOKENS` format, and the tokens kept in Redis.

Two places hold tokens. `BACKFILL_API_TOKENS` (`scope:token` pairs, comma-separated) is read by
each API process at start. Tokens made with `backfill token create` live in Redis, in the hash
`<namespace>api-tokens`, so every API replica sees a new or revoked one at once. Redis holds
only the SHA-256 of each token, never the token: whoever reads the hash cannot call the API.

Constant time: an environment token is compared with `hmac.compare_digest`. A Redis token is
found by the SHA-256 of what the client sent; a lookup's timing can say something about that
digest, never about a stored token, since no one can work back from a digest to a token.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, get_args

from redis.asyncio import Redis

from backfill_bus.names import Names

Scope = Literal["read", "submit", "admin"]
# Ordered: each scope includes those before it (admin may submit, submit may read).
SCOPES: tuple[Scope, ...] = get_args(Scope)
# Short tokens can be guessed; 16 characters of a URL-safe alphabet are 96 bits.
MIN_TOKEN_LENGTH = 16
NAME_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,64}")
ENV_NAME_PREFIX = "env-"  # names of BACKFILL_API_TOKENS entries, by position: env-1, env-2


class TokenFormatError(ValueError):
    """Raised when `BACKFILL_API_TOKENS` (or a scope or name given to the CLI) is malformed.

    The message says which entry and why, and never contains a token.
    """


class TokenNameTakenError(Exception):
    """Raised when `backfill token create --name N` names a token that exists: revoke it first."""


def scope_allows(held: Scope, needed: Scope) -> bool:
    return SCOPES.index(held) >= SCOPES.index(needed)


def parse_scope(text: str) -> Scope:
    if text not in SCOPES:
        raise TokenFormatError(f"unknown scope {text!r}; scopes are {', '.join(SCOPES)}")
    return text


def digest_of(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """What is known of a token, without the token: safe to print and to log."""

    name: str
    scope: Scope
    created: str = ""  # ISO 8601, UTC; empty for environment tokens


@dataclass(frozen=True, slots=True)
class EnvToken:
    info: TokenInfo
    token: str

    def __repr__(self) -> str:  # a dataclass repr would print the token
        return f"EnvToken({self.info!r})"

    def matches(self, candidate: str) -> bool:
        return hmac.compare_digest(candidate.encode(), self.token.encode())


def parse_env_tokens(text: str) -> tuple[EnvToken, ...]:
    """`admin:tok1,submit:tok2` as tokens named env-1, env-2; TokenFormatError if malformed."""
    tokens: list[EnvToken] = []
    entries = [entry.strip() for entry in text.split(",")]
    for number, entry in enumerate(entries, start=1):
        where = f"entry {number} of BACKFILL_API_TOKENS"
        scope_text, colon, token = entry.partition(":")
        if not colon or not token:
            raise TokenFormatError(f"{where} is not `scope:token` (scopes: {', '.join(SCOPES)})")
        try:
            scope = parse_scope(scope_text.strip())
        except TokenFormatError as error:
            raise TokenFormatError(f"{where}: {error}") from None
        if len(token) < MIN_TOKEN_LENGTH or any(c.isspace() for c in token):
            raise TokenFormatError(
                f"{where}: a token has at least {MIN_TOKEN_LENGTH} characters and no spaces"
                " (make one with `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
            )
        tokens.append(EnvToken(TokenInfo(f"{ENV_NAME_PREFIX}{number}", scope), token))
    return tuple(tokens)


def find_env_token(tokens: tuple[EnvToken, ...], candidate: str) -> TokenInfo | None:
    """The matching token's info; every entry is compared, so the time says nothing of which."""
    found: TokenInfo | None = None
    for token in tokens:
        if token.matches(candidate):
            found = token.info
    return found


# ---- tokens kept in Redis -------------------------------------------------------------------


def _tokens_key(names: Names) -> str:
    return f"{names.namespace}api-tokens"  # SHA-256 hex -> {name, scope, created}


def _names_key(names: Names) -> str:
    return f"{names.namespace}api-token-names"  # name -> SHA-256 hex, so names stay unique


# Both hashes change together: a name is taken and its digest stored, or neither.
_CREATE = """
if redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
return 1
"""
_REVOKE = """
local digest = redis.call('HGET', KEYS[2], ARGV[1])
if not digest then return 0 end
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[1], digest)
return 1
"""


def check_name(name: str) -> str:
    if not NAME_PATTERN.fullmatch(name) or name.startswith(ENV_NAME_PREFIX):
        raise TokenFormatError(
            f"a token name is 1 to 64 characters of A-Z a-z 0-9 . _ - and does not start with"
            f" {ENV_NAME_PREFIX!r} (kept for BACKFILL_API_TOKENS entries): {name[:80]!r}"
        )
    return name


async def create_token(
    redis: Redis, names: Names, scope: Scope, name: str | None = None
) -> tuple[str, TokenInfo]:
    """A new random token and its info; the token itself is returned here and never again."""
    token = secrets.token_urlsafe(32)
    info = TokenInfo(
        check_name(name or f"{scope}-{secrets.token_hex(3)}"),
        scope,
        datetime.now(UTC).isoformat(timespec="seconds"),
    )
    record = json.dumps({"name": info.name, "scope": info.scope, "created": info.created})
    created = await redis.eval(
        _CREATE, 2, _tokens_key(names), _names_key(names), info.name, digest_of(token), record
    )
    if not created:
        raise TokenNameTakenError(
            f"a token named {info.name!r} exists: revoke it first, or choose another --name"
        )
    return token, info


async def find_token(redis: Redis, names: Names, candidate: str) -> TokenInfo | None:
    raw: Any = await redis.hget(_tokens_key(names), digest_of(candidate))
    return None if raw is None else _info(raw)


async def list_tokens(redis: Redis, names: Names) -> list[TokenInfo]:
    """Every token in Redis, oldest first (names, scopes, creation times: never the tokens)."""
    raw: dict[Any, Any] = await redis.hgetall(_tokens_key(names))
    infos = [info for value in raw.values() if (info := _info(value)) is not None]
    return sorted(infos, key=lambda info: (info.created, info.name))


async def revoke_token(redis: Redis, names: Names, name: str) -> bool:
    """Delete the token named `name`; False if there was none. The API refuses it at once."""
    deleted = await redis.eval(_REVOKE, 2, _tokens_key(names), _names_key(names), name)
    return bool(deleted)


def _info(raw: str | bytes) -> TokenInfo | None:
    try:
        record = json.loads(raw)
        return TokenInfo(str(record["name"]), parse_scope(record["scope"]), str(record["created"]))
    except (ValueError, TypeError, KeyError):
        return None  # a hand-edited entry gone bad grants nothing
