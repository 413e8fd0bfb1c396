"""Schedules: a universe's run, submitted at every tick of a cron expression in a timezone.

A schedule is configuration, kept in Redis beside the universes it runs (one hash: name ->
JSON), with its state in a hash of its own (the last tick fired, the run it made, the last
error) so pausing or editing a schedule never races the scheduler recording a tick.

Exactly one run per tick, however many schedulers are up: the run id is derived from the
schedule and the tick (`sched.<name>.<tick>`), universe runs are idempotent per run id, and a
lease in Redis named after the tick lets one scheduler submit while the others skip it. A
scheduler that dies between the lease and recording the tick leaves the tick due: the lease
expires, another scheduler takes it and submits the same run id, which finds the jobs made
already and makes none twice.

Missed ticks (nothing ran at the time) are caught up once: the scheduler fires the latest tick
due since the last one it fired, never each missed one, since a top-up run collects everything
since the last stored bar anyway. Ticks missed while a schedule was paused are not caught up:
resuming counts from the moment of the resume.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError
from cronsim.explain import explain
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator
from redis.asyncio import Redis

from backfill_bus.commands import CommandBus
from backfill_bus.names import Names
from backfill_bus.universes import NAME_PATTERN as UNIVERSE_NAME
from backfill_bus.universes import RunSubmission, UniverseStore, submit_run
from backfill_contracts import JobMode

# Short enough that `sched.<name>.<tick>` fits a run id (64).
NAME_PATTERN = r"^[A-Za-z0-9_.-]{1,40}$"
_NAME = re.compile(NAME_PATTERN)
LEASE_S = 60  # a scheduler that took a tick and died frees it after this long


class Schedule(BaseModel):
    """Run a universe at every tick of `cron` (five fields, minute resolution) in `timezone`."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "megacaps-daily",
                    "universe": "megacaps",
                    "cron": "30 16 * * 1-5",
                    "timezone": "America/New_York",
                    "mode": "top_up",
                }
            ]
        },
    )

    name: str = Field(pattern=NAME_PATTERN, description="1 to 40 of A-Z a-z 0-9 _ . -")
    universe: str = Field(pattern=UNIVERSE_NAME, description="the universe each tick runs")
    cron: str = Field(
        description="minute hour day-of-month month day-of-week, e.g. `30 16 * * 1-5`: every "
        "weekday at 16:30 in `timezone` (30 minutes after the NYSE close)"
    )
    timezone: str = Field(default="UTC", description="an IANA zone, e.g. America/New_York")
    mode: JobMode = Field(
        default=JobMode.TOP_UP, description="every job's mode: `top_up` keeps the data current"
    )
    description: str | None = Field(default=None, max_length=500)

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        value = " ".join(value.split())
        if len(value.split(" ")) != 5:
            raise ValueError("a cron expression has five fields: minute hour day month weekday")
        try:
            CronSim(value, datetime(2000, 1, 1, tzinfo=UTC))
        except (CronSimError, LookupError, TypeError, ValueError) as error:
            raise ValueError(f"not a cron expression: {error}") from error
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError) as error:  # OSError: a long name
            raise ValueError(
                f"unknown timezone {value!r} (an IANA name, e.g. Europe/London)"
            ) from error
        return value

    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def explain(self) -> str:
        """`cron` in words, e.g. "At 16:30 on Monday through Friday"."""
        try:
            return f"{explain(self.cron)} ({self.timezone})"
        except Exception:  # explain() covers less than CronSim parses: the expression will do
            return f"{self.cron} ({self.timezone})"


class ScheduleState(BaseModel):
    """What the scheduler did with a schedule; kept apart from the definition."""

    paused: bool = False
    since: AwareDatetime | None = None  # ticks before this are not due (created or resumed)
    last_tick: AwareDatetime | None = None  # the latest tick fired (a run id was submitted)
    last_run_id: str | None = None
    last_fired_at: AwareDatetime | None = None
    last_error: str | None = None


class ScheduleView(Schedule):
    """A schedule with its state and its next tick, as the API, CLI and console show it."""

    explained: str
    paused: bool
    next_tick: AwareDatetime | None
    last_tick: AwareDatetime | None
    last_run_id: str | None
    last_fired_at: AwareDatetime | None
    last_error: str | None


def view_of(schedule: Schedule, state: ScheduleState, now: datetime) -> ScheduleView:
    return ScheduleView(
        **schedule.model_dump(),
        explained=schedule.explain(),
        paused=state.paused,
        next_tick=None if state.paused else next_tick(schedule, now),
        last_tick=state.last_tick,
        last_run_id=state.last_run_id,
        last_fired_at=state.last_fired_at,
        last_error=state.last_error,
    )


# --- ticks ---------------------------------------------------------------------------------------


def next_tick(schedule: Schedule, after: datetime) -> datetime | None:
    """The first tick strictly after `after`, in UTC (None: it never fires)."""
    local = after.astimezone(schedule.zone())
    try:
        return next(CronSim(schedule.cron, local)).astimezone(UTC)
    except StopIteration:
        return None


def latest_tick(schedule: Schedule, at_or_before: datetime) -> datetime | None:
    """The last tick at or before `at_or_before`, in UTC (ticks fall on whole minutes)."""
    # CronSim steps back from strictly before its start: start just past the moment.
    local = (at_or_before + timedelta(microseconds=1)).astimezone(schedule.zone())
    try:
        return next(CronSim(schedule.cron, local, reverse=True)).astimezone(UTC)
    except StopIteration:
        return None


def due_tick(schedule: Schedule, state: ScheduleState, now: datetime) -> datetime | None:
    """The tick to fire now: the latest one at or before `now` not fired yet and not before
    `state.since`; None when paused or nothing is due. Several missed ticks give one."""
    if state.paused:
        return None
    tick = latest_tick(schedule, now)
    if tick is None:
        return None
    if state.since is not None and tick < state.since:
        return None
    if state.last_tick is not None and tick <= state.last_tick:
        return None
    return tick


def run_id_for(schedule_name: str, tick: datetime) -> str:
    """The universe run of one tick: the same id from every scheduler, so at most one run."""
    return f"sched.{schedule_name}.{tick.astimezone(UTC):%Y%m%dT%H%MZ}"


def manual_run_id(schedule_name: str, now: datetime) -> str:
    """A triggered run: its own id, so a trigger never takes the place of a tick's run."""
    return f"sched.{schedule_name}.now.{now.astimezone(UTC):%Y%m%dT%H%M%SZ}"


# --- storage -------------------------------------------------------------------------------------


def _schedules_key(names: Names) -> str:
    return f"{names.namespace}schedules"


def _state_key(names: Names, name: str) -> str:
    return f"{names.namespace}schedule-state:{name}"


def tick_lease_key(names: Names, name: str, tick: datetime) -> str:
    return f"{names.namespace}schedule-tick:{name}:{int(tick.timestamp())}"


# Record a fired tick unless a later one is recorded already: two schedulers finishing out of
# order never move `last_tick` back (which would make a tick due again).
_RECORD_TICK = """
local last = redis.call('HGET', KEYS[1], 'last_tick_ts')
if last and tonumber(last) >= tonumber(ARGV[1]) then
    return 0
end
redis.call('HSET', KEYS[1], 'last_tick_ts', ARGV[1], 'last_tick', ARGV[2],
           'last_run_id', ARGV[3], 'last_fired_at', ARGV[4], 'last_error', '')
return 1
"""


class ScheduleStore:
    """The schedules and their state, in Redis."""

    def __init__(self, redis: Redis, names: Names) -> None:
        self.redis = redis
        self.names = names

    async def put(self, schedule: Schedule, now: datetime) -> bool:
        """Create or replace; True when it was new. A new schedule's ticks count from `now`."""
        created = bool(
            await self.redis.hset(
                _schedules_key(self.names), schedule.name, schedule.model_dump_json()
            )
        )
        if created:
            await self.redis.hsetnx(_state_key(self.names, schedule.name), "since", _iso(now))
        return created

    async def get(self, name: str) -> Schedule | None:
        if not _NAME.fullmatch(name):
            return None
        raw = await self.redis.hget(_schedules_key(self.names), name)
        return None if raw is None else Schedule.model_validate_json(raw)

    async def all(self) -> list[Schedule]:
        stored: dict[Any, Any] = await self.redis.hgetall(_schedules_key(self.names))
        return sorted(
            (Schedule.model_validate_json(raw) for raw in stored.values()), key=lambda s: s.name
        )

    async def delete(self, name: str) -> bool:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hdel(_schedules_key(self.names), name)
            pipe.delete(_state_key(self.names, name))
            deleted, _ = await pipe.execute()
        return bool(deleted)

    async def state(self, name: str) -> ScheduleState:
        raw: dict[Any, Any] = await self.redis.hgetall(_state_key(self.names, name))
        fields = {_text(k): _text(v) for k, v in raw.items()}
        return ScheduleState(
            paused=fields.get("paused") == "1",
            since=fields.get("since") or None,
            last_tick=fields.get("last_tick") or None,
            last_run_id=fields.get("last_run_id") or None,
            last_fired_at=fields.get("last_fired_at") or None,
            last_error=fields.get("last_error") or None,
        )

    async def pause(self, name: str) -> None:
        await self.redis.hset(_state_key(self.names, name), "paused", "1")

    async def resume(self, name: str, now: datetime) -> None:
        """Unpause; ticks missed while paused are not caught up (they count from `now`)."""
        await self.redis.hset(
            _state_key(self.names, name), mapping={"paused": "0", "since": _iso(now)}
        )

    async def take_tick(self, name: str, tick: datetime) -> bool:
        """The lease on one tick: True for exactly one caller until it expires."""
        taken = await self.redis.set(
            tick_lease_key(self.names, name, tick), "1", nx=True, ex=LEASE_S
        )
        return bool(taken)

    async def record_tick(self, name: str, tick: datetime, run_id: str, now: datetime) -> None:
        await self.redis.eval(
            _RECORD_TICK,
            1,
            _state_key(self.names, name),
            int(tick.timestamp()),
            _iso(tick),
            run_id,
            _iso(now),
        )

    async def record_run(self, name: str, run_id: str, now: datetime) -> None:
        """A triggered run: shown as the last run, without moving the ticks."""
        await self.redis.hset(
            _state_key(self.names, name),
            mapping={"last_run_id": run_id, "last_fired_at": _iso(now), "last_error": ""},
        )

    async def record_error(self, name: str, error: str) -> None:
        await self.redis.hset(_state_key(self.names, name), "last_error", error[:500])


# --- firing --------------------------------------------------------------------------------------


class UnknownUniverseError(LookupError):
    """The schedule names a universe that is not defined (any more)."""


@dataclass(frozen=True, slots=True)
class Fired:
    schedule: str
    tick: datetime | None  # None: a triggered run
    run_id: str
    submitted: RunSubmission


async def fire_due(
    schedules: ScheduleStore,
    universes: UniverseStore,
    commands: CommandBus,
    schedule: Schedule,
    now: datetime,
) -> Fired | None:
    """Submit the schedule's run for its due tick, if one is due and no scheduler has it.

    The run's jobs end at the tick (for an open universe), so every scheduler that ever
    submits this tick's run asks for the same bars. Raises UnknownUniverseError (recorded on
    the schedule's state, the tick left due) when the universe is gone.
    """
    state = await schedules.state(schedule.name)
    tick = due_tick(schedule, state, now)
    if tick is None or not await schedules.take_tick(schedule.name, tick):
        return None
    run_id = run_id_for(schedule.name, tick)
    submitted = await _submit(schedules, universes, commands, schedule, run_id, tick)
    await schedules.record_tick(schedule.name, tick, run_id, now)
    return Fired(schedule.name, tick, run_id, submitted)


async def trigger(
    schedules: ScheduleStore,
    universes: UniverseStore,
    commands: CommandBus,
    schedule: Schedule,
    now: datetime,
) -> Fired:
    """Run the schedule's universe now, as the schedule would (its mode), outside its ticks.

    Works on a paused schedule too: pausing stops the ticks, not a person asking.
    """
    run_id = manual_run_id(schedule.name, now)
    submitted = await _submit(schedules, universes, commands, schedule, run_id, now)
    await schedules.record_run(schedule.name, run_id, now)
    return Fired(schedule.name, None, run_id, submitted)


async def _submit(
    schedules: ScheduleStore,
    universes: UniverseStore,
    commands: CommandBus,
    schedule: Schedule,
    run_id: str,
    as_of: datetime,
) -> RunSubmission:
    universe = await universes.get(schedule.universe)
    if universe is None:
        message = f"universe {schedule.universe} is not defined"
        await schedules.record_error(schedule.name, message)
        raise UnknownUniverseError(message)
    return await submit_run(
        universes,
        commands,
        universe,
        run_id,
        correlation_id=f"schedule:{schedule.name}:{run_id}",
        mode=schedule.mode,
        as_of=as_of,
    )


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
