"""Maintenance: asking for a cleanup of finished jobs, once per period, and trimming by age.

A cleanup is an event on the log (`maintenance.cleanup`), not a direct delete: the projector
stays the only writer of the tables and a rebuild from the log deletes the same rows. Trimming
drops old stream entries nobody needs any more: projected events, acknowledged commands. The
dlq is never trimmed.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from backfill_bus.codec import encode, text
from backfill_bus.event_log import EventLog
from backfill_bus.names import EVENTS_GROUP, Names
from backfill_contracts import DATA_FIELD, CleanupRequested, utc_now

DEFAULT_RETENTION_DAYS = 7

# SET NX and XADD in one step: the replica that takes the period's lease is the one whose
# request is on the log, and a crash between the two can neither lose nor double it.
_APPEND_ONCE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
    return redis.call('XADD', KEYS[2], '*', ARGV[3], ARGV[4])
end
return false
"""


class RetentionSettings(BaseSettings):
    """How long finished jobs stay in the tables; shared by the projector and the API."""

    model_config = SettingsConfigDict(env_prefix="BACKFILL_", extra="ignore")

    job_retention_days: int = Field(default=DEFAULT_RETENTION_DAYS, ge=0)


def finished_before(days: float, now: datetime | None = None) -> datetime:
    """The cutoff of a cleanup that keeps `days` days of finished jobs."""
    return (now or utc_now()) - timedelta(days=days)


def cleanup_request(
    *, keep_days: float, requested_by: str, producer: str, now: datetime | None = None
) -> CleanupRequested:
    """A request stamped `now` whose cutoff is exactly `keep_days` days before it."""
    now = now or utc_now()
    return CleanupRequested(
        finished_before=finished_before(keep_days, now),
        requested_by=requested_by,
        producer=producer,
        ts=now,
    )


async def request_cleanup(
    redis: Redis,
    names: Names,
    *,
    keep_days: float,
    requested_by: str,
    producer: str,
    now: datetime | None = None,
) -> CleanupRequested:
    """Append a cleanup of jobs finished more than `keep_days` days ago to the log.

    The projector deletes when it folds it: finished jobs (with their chunks and history)
    that ended before the cutoff, and workers not heard from since. Bars are never deleted.
    """
    event = cleanup_request(
        keep_days=keep_days, requested_by=requested_by, producer=producer, now=now
    )
    await EventLog(redis, names, producer).append(event)
    return event


def period_of(moment: datetime, interval_s: float) -> int:
    """The number of the period (of `interval_s` seconds since the epoch) `moment` falls in."""
    return int(moment.timestamp() // interval_s)


def cleanup_lease_key(names: Names, period: int) -> str:
    return f"{names.namespace}maintenance:cleanup:{period}"


async def request_cleanup_once(
    redis: Redis,
    names: Names,
    *,
    interval_s: float,
    keep_days: float,
    requested_by: str,
    producer: str,
    now: datetime | None = None,
) -> CleanupRequested | None:
    """Append a cleanup request unless one was appended in this period (of `interval_s`).

    However many replicas call this in the same period, exactly one request reaches the log:
    the lease key names the period and lives two periods. Returns the request, or None when
    another caller had the period.
    """
    event = cleanup_request(
        keep_days=keep_days, requested_by=requested_by, producer=producer, now=now
    )
    key = cleanup_lease_key(names, period_of(event.ts, interval_s))
    lease_ms = max(1, int(2 * interval_s * 1000))
    body = encode(event)[DATA_FIELD]
    appended: Any = await redis.eval(
        _APPEND_ONCE, 2, key, names.events, producer, lease_ms, DATA_FIELD, body
    )
    return event if appended else None


# --- trimming ------------------------------------------------------------------------------------


def parse_id(entry_id: str | bytes) -> tuple[int, int]:
    millis, _, counter = text(entry_id).partition("-")
    return int(millis), int(counter or 0)


def format_id(entry_id: tuple[int, int]) -> str:
    return f"{entry_id[0]}-{entry_id[1]}"


def id_at(moment: datetime) -> tuple[int, int]:
    """The smallest stream id at or after `moment`: entries before it are older."""
    return int(moment.timestamp() * 1000), 0


async def trim_events(
    redis: Redis, names: Names, *, older_than: datetime, projected: str | None
) -> int:
    """Trim events older than `older_than` that the projector has folded; how many went.

    `projected` is the projector's committed position: the entries before it are in the
    tables, the entry itself is kept. Nothing is trimmed while nothing is projected. Nor is
    an entry the projector has not acked: a commit it acks later may not have reached the disk
    yet (see the projector), and a crash that loses it has the projector fold the entry again.
    """
    if projected is None:
        return 0
    minid = min(id_at(older_than), parse_id(projected))
    try:
        pending: Any = await redis.xpending(names.events, EVENTS_GROUP)
    except ResponseError:  # no log, or no group yet (a Redis that came back empty): keep all
        return 0
    if pending["pending"]:
        minid = min(minid, parse_id(pending["min"]))
    trimmed: int = await redis.xtrim(names.events, minid=format_id(minid), approximate=False)
    return trimmed


async def trim_commands(redis: Redis, names: Names, source: str, *, older_than: datetime) -> int:
    """Trim acknowledged commands older than `older_than` from `cmd.<source>`; how many went.

    Never a pending entry (read but not acked: its job may be running), nor one no consumer
    has been given yet: the bound is the oldest of the cutoff, each group's oldest pending
    entry and each group's next undelivered entry. A stream no group reads is left alone.
    """
    stream = names.command_stream(source)
    if not await redis.exists(stream):
        return 0
    groups: Any = await redis.xinfo_groups(stream)
    if not groups:
        return 0
    bound = id_at(older_than)
    for group in groups:
        millis, counter = parse_id(group["last-delivered-id"])
        bound = min(bound, (millis, counter + 1))
        pending: Any = await redis.xpending(stream, group["name"])
        if pending["pending"]:
            bound = min(bound, parse_id(pending["min"]))
    trimmed: int = await redis.xtrim(stream, minid=format_id(bound), approximate=False)
    return trimmed
