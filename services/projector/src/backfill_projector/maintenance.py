"""Scheduled maintenance in the projector process: cleanup requests and trimming by age.

Once per period (`cleanup_interval_s`, counted from the epoch), exactly one projector replica
appends a cleanup request for jobs finished more than `job_retention_days` ago: a lease in
Redis named after the period decides which. The first run is at start, so a period missed while
nothing ran is caught up once, not once per missed period. Every replica also trims, each
period: projected events older than `event_retention_days` (never past the committed
position), and acknowledged commands as old (never a pending one). The dlq is never trimmed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from backfill_bus import (
    Names,
    finished_before,
    period_of,
    request_cleanup_once,
    trim_commands,
    trim_events,
)
from backfill_contracts import CleanupRequested, known_sources, utc_now
from backfill_projector import store
from backfill_projector.faults import repeat_through_outages

log = logging.getLogger(__name__)

REQUESTED_BY = "schedule"


@dataclass(frozen=True)
class MaintenanceRun:
    """What one run did: the cleanup it requested (None if another replica had the period)."""

    period: int
    cleanup: CleanupRequested | None
    events_trimmed: int
    commands_trimmed: dict[str, int] = field(default_factory=dict)


class Maintenance:
    def __init__(
        self,
        engine: AsyncEngine,
        redis: Redis,
        names: Names,
        *,
        producer: str,
        interval_s: float = 86400,
        job_retention_days: float = 7,
        event_retention_days: float = 7,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.engine = engine
        self.redis = redis
        self.names = names
        self.producer = producer
        self.interval_s = interval_s
        self.job_retention_days = job_retention_days
        self.event_retention_days = event_retention_days
        self.clock = clock

    async def run(self, stop: asyncio.Event) -> None:
        """Run once now, then at the start of every period, until `stop` is set. After an
        outage the same period runs again: the lease makes that safe."""
        await repeat_through_outages(stop, log, "maintenance", self._step)

    async def _step(self) -> float:
        done = await self.run_once()
        next_start = (done.period + 1) * self.interval_s
        return max(0.0, next_start - self.clock().timestamp())

    async def run_once(self, now: datetime | None = None) -> MaintenanceRun:
        """Request this period's cleanup unless another replica did, then trim."""
        now = now or self.clock()
        period = period_of(now, self.interval_s)
        cleanup = await request_cleanup_once(
            self.redis,
            self.names,
            interval_s=self.interval_s,
            keep_days=self.job_retention_days,
            requested_by=REQUESTED_BY,
            producer=self.producer,
            now=now,
        )
        if cleanup is not None:
            log.info(
                "maintenance period %d: requested the cleanup of jobs finished before %s",
                period,
                cleanup.finished_before.isoformat(),
            )
        else:
            log.info("maintenance period %d: cleanup already requested by a replica", period)
        trim_before = finished_before(self.event_retention_days, now)
        async with self.engine.connect() as conn:
            projected = await store.committed_position(conn, self.names.events)
        events = await trim_events(
            self.redis, self.names, older_than=trim_before, projected=projected
        )
        commands = {
            source: await trim_commands(self.redis, self.names, source, older_than=trim_before)
            for source in known_sources()
        }
        if events or any(commands.values()):
            log.info("trimmed %d events and %s commands", events, commands)
        return MaintenanceRun(period, cleanup, events, commands)
