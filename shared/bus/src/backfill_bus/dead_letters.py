"""The `dlq` stream: every entry we could not use, kept with the reason, never dropped."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from redis.asyncio import Redis

from backfill_bus.codec import Fields, body_of, text
from backfill_bus.names import Names
from backfill_contracts import utc_now

log = logging.getLogger(__name__)


async def dead_letter(
    redis: Redis,
    names: Names,
    *,
    stream: str,
    entry_id: str,
    fields: Mapping[bytes, bytes],
    reason: str,
) -> str:
    """Copy an unusable entry to the dlq with why it was refused; returns the dlq entry id."""
    log.warning("dead-lettering %s %s: %s", stream, entry_id, reason[:300])
    entry: Fields = {
        "reason": reason[:4000],
        "stream": stream,
        "entry_id": entry_id,
        "dead_lettered_at": utc_now().isoformat(),
        "payload": body_of(fields),
    }
    return text(await redis.xadd(names.dlq, entry))
