"""The scheduler in the projector process: fires every schedule's due tick as a universe run.

Every projector replica runs it; the tick's lease and the run id derived from the tick make
exactly one run per tick (backfill_bus.schedules). It looks every `poll_s` seconds, so a tick
fires within that long of its time; after downtime the first look catches each schedule up
once. A schedule that cannot fire (its universe deleted, a run id that conflicts) is logged and
its error kept on the schedule for the API and console; the others go on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from redis.asyncio import Redis

from backfill_bus import CommandBus, IdempotencyConflictError, Names
from backfill_bus.schedules import Fired, ScheduleStore, UnknownUniverseError, fire_due
from backfill_bus.universes import UniverseStore
from backfill_contracts import utc_now
from backfill_projector.faults import repeat_through_outages

log = logging.getLogger(__name__)


class Scheduler:
    def __init__(
        self,
        redis: Redis,
        names: Names,
        *,
        producer: str,
        poll_s: float = 15.0,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.schedules = ScheduleStore(redis, names)
        self.universes = UniverseStore(redis, names)
        self.commands = CommandBus(redis, names, producer)
        self.poll_s = poll_s
        self.clock = clock

    async def run(self, stop: asyncio.Event) -> None:
        """Look for due ticks now and every `poll_s` seconds, until `stop` is set."""
        await repeat_through_outages(stop, log, "scheduler", self._step)

    async def _step(self) -> float:
        await self.run_once()
        return self.poll_s

    async def run_once(self, now: datetime | None = None) -> list[Fired]:
        """Fire every schedule's due tick that no other scheduler has; what this one fired."""
        now = now or self.clock()
        fired: list[Fired] = []
        for schedule in await self.schedules.all():
            try:
                done = await fire_due(self.schedules, self.universes, self.commands, schedule, now)
            except UnknownUniverseError as error:
                log.warning("schedule %s cannot fire: %s", schedule.name, error)
                continue
            except IdempotencyConflictError:
                message = "this tick's run was submitted before with other settings"
                await self.schedules.record_error(schedule.name, message)
                log.warning("schedule %s: %s", schedule.name, message)
                continue
            if done is not None:
                fired.append(done)
                log.info(
                    "schedule %s fired its %s tick: run %s of universe %s, %d jobs submitted",
                    schedule.name,
                    done.tick.isoformat() if done.tick else "manual",
                    done.run_id,
                    schedule.universe,
                    done.submitted.created,
                )
        return fired
