"""The streams as Redis sees them (what Flower showed of its broker), and the dead letters.

Read straight from Redis each time: lengths, consumer groups, pending counts and lag are
Redis's own state, kept across a console restart by Redis itself. The stream figures come from
`backfill_bus.stream_stats`, which the services' metrics read too.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from backfill_bus import Names
from backfill_bus.stream_stats import (
    GroupInfo,
    StreamInfo,
    all_streams,
    stream_info,
    watched_streams,
)

__all__ = [
    "DeadLetter",
    "GroupInfo",
    "StreamInfo",
    "all_streams",
    "dead_letters",
    "stream_info",
    "watched_streams",
]

DLQ_SHOWN = 20
PAYLOAD_SHOWN = 600  # characters of a dead letter's payload: enough to recognise it


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
