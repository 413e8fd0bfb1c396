"""The streams as Redis sees them (what Flower showed of its broker), and the dead letters.

Read straight from Redis each time: lengths, consumer groups, pending counts and lag are
Redis's own state, kept across a console restart by Redis itself.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from backfill_bus import Names
from backfill_contracts import known_sources

DLQ_SHOWN = 20
PAYLOAD_SHOWN = 600  # characters of a dead letter's payload: enough to recognise it


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


@dataclass(frozen=True, slots=True)
class DeadLetter:
    entry_id: str
    reason: str
    stream: str
    original_id: str
    at: str
    payload: str


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
    return StreamInfo(
        name,
        role,
        exists=True,
        length=int(info.get("length", 0)),
        last_entry=_text(info.get("last-generated-id")),
        groups=tuple(
            GroupInfo(
                name=_text(group.get("name")),
                consumers=int(group.get("consumers") or 0),
                pending=int(group.get("pending") or 0),
                lag=None if group.get("lag") is None else int(group["lag"]),
                last_delivered=_text(group.get("last-delivered-id")),
            )
            for group in groups
        ),
    )


async def all_streams(redis: Redis, names: Names) -> list[StreamInfo]:
    return [await stream_info(redis, name, role) for name, role in watched_streams(names)]


async def dead_letters(redis: Redis, names: Names, count: int = DLQ_SHOWN) -> list[DeadLetter]:
    """The newest dead letters first, with the reason each was refused."""
    entries: Any = await redis.xrevrange(names.dlq, count=count)
    letters = []
    for entry_id, fields in entries:
        values = {_text(key): _text(value) for key, value in fields.items()}
        letters.append(
            DeadLetter(
                entry_id=_text(entry_id),
                reason=values.get("reason", "(no reason recorded)"),
                stream=values.get("stream", ""),
                original_id=values.get("entry_id", ""),
                at=values.get("dead_lettered_at", ""),
                payload=_shorten(values.get("payload", "")),
            )
        )
    return letters


def _shorten(payload: str) -> str:
    with contextlib.suppress(ValueError):  # not JSON: shown as it came
        payload = json.dumps(json.loads(payload), separators=(",", ":"))
    if len(payload) > PAYLOAD_SHOWN:
        return payload[:PAYLOAD_SHOWN] + f"… ({len(payload):,} characters)"
    return payload
