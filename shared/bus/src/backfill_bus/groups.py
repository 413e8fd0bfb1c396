"""Consumer groups are created by us, at the start of the stream, before anyone publishes.

FastStream would create a group at `$` when a worker first starts, which silently skips every
command published before that moment; creating it at `0` first means nothing queued is lost.
"""

from __future__ import annotations

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from backfill_bus.names import EVENTS_GROUP, Names


async def ensure_group(redis: Redis, stream: str, group: str, start: str = "0") -> None:
    """Create `group` reading from `start` ("0": everything; "$": from now on) if absent."""
    try:
        await redis.xgroup_create(stream, group, id=start, mkstream=True)
    except ResponseError as error:
        if "BUSYGROUP" not in str(error):
            raise


async def ensure_command_group(redis: Redis, names: Names, source: str) -> None:
    await ensure_group(redis, names.command_stream(source), names.command_group(source))


async def ensure_events_group(redis: Redis, names: Names) -> None:
    await ensure_group(redis, names.events, EVENTS_GROUP)
