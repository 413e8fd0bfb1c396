"""Schedules: a universe's run at every tick of a cron expression in a timezone.

Defined here, kept in Redis (backfill_bus.schedules), fired by the scheduler in the projector.
Pausing stops the ticks (missed ones are not caught up on resume); triggering submits a run now,
whatever the schedule's state.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Response, status
from pydantic import BaseModel, Field

from backfill_api.dependencies import ServicesDep
from backfill_bus import IdempotencyConflictError
from backfill_bus.schedules import (
    NAME_PATTERN,
    Schedule,
    ScheduleStore,
    ScheduleView,
    UnknownUniverseError,
    trigger,
    view_of,
)
from backfill_bus.universes import RunJob, UniverseStore
from backfill_contracts import utc_now

router = APIRouter(prefix="/schedules", tags=["schedules"])

NameParam = Annotated[str, Path(pattern=NAME_PATTERN)]
_NOT_FOUND = {"description": "No schedule of this name"}


def _store(services: ServicesDep) -> ScheduleStore:
    return ScheduleStore(services.redis, services.commands.names)


async def _schedule_or_404(services: ServicesDep, name: str) -> Schedule:
    schedule = await _store(services).get(name)
    if schedule is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no schedule {name}")
    return schedule


async def _view(services: ServicesDep, schedule: Schedule) -> ScheduleView:
    return view_of(schedule, await _store(services).state(schedule.name), utc_now())


@router.get("", response_model=list[ScheduleView])
async def list_schedules(services: ServicesDep) -> list[ScheduleView]:
    """Every schedule, by name, with its next tick and its last run."""
    return [await _view(services, s) for s in await _store(services).all()]


@router.put(
    "/{name}",
    response_model=ScheduleView,
    responses={
        200: {"description": "Replaced"},
        201: {"description": "Created"},
        409: {"description": "The universe it names is not defined"},
    },
)
async def put_schedule(
    name: NameParam, schedule: Schedule, services: ServicesDep, response: Response
) -> ScheduleView:
    """Create or replace a schedule. A new one's first tick is the first after now; a replaced
    one keeps its state (paused or not, the last tick fired)."""
    if schedule.name != name:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"the body names schedule {schedule.name!r}, the path {name!r}",
        )
    if await UniverseStore(services.redis, services.commands.names).get(schedule.universe) is None:
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"no universe {schedule.universe}: define it first"
        )
    created = await _store(services).put(schedule, utc_now())
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return await _view(services, schedule)


@router.get("/{name}", response_model=ScheduleView, responses={404: _NOT_FOUND})
async def get_schedule(name: NameParam, services: ServicesDep) -> ScheduleView:
    return await _view(services, await _schedule_or_404(services, name))


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT, responses={404: _NOT_FOUND})
async def delete_schedule(name: NameParam, services: ServicesDep) -> Response:
    """Stop and forget the schedule; the runs it made, their jobs and bars stay."""
    if not await _store(services).delete(name):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no schedule {name}")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{name}/pause", response_model=ScheduleView, responses={404: _NOT_FOUND})
async def pause_schedule(name: NameParam, services: ServicesDep) -> ScheduleView:
    """Stop firing ticks until resumed. Runs already submitted go on."""
    schedule = await _schedule_or_404(services, name)
    await _store(services).pause(name)
    return await _view(services, schedule)


@router.post("/{name}/resume", response_model=ScheduleView, responses={404: _NOT_FOUND})
async def resume_schedule(name: NameParam, services: ServicesDep) -> ScheduleView:
    """Fire ticks again from now on; those missed while paused are not caught up."""
    schedule = await _schedule_or_404(services, name)
    await _store(services).resume(name, utc_now())
    return await _view(services, schedule)


class Triggered(BaseModel):
    schedule: str
    universe: str
    run_id: str
    jobs: list[RunJob]
    created: int = Field(description="jobs this request submitted")


@router.post(
    "/{name}/trigger",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Triggered,
    responses={404: _NOT_FOUND, 409: {"description": "The universe it names is not defined"}},
)
async def trigger_schedule(name: NameParam, services: ServicesDep) -> Triggered:
    """Submit the schedule's run now (its universe, its mode), paused or not.

    The run id is `sched.<name>.now.<time to the second>`: a double click is one run.
    """
    schedule = await _schedule_or_404(services, name)
    universes = UniverseStore(services.redis, services.commands.names)
    try:
        fired = await trigger(_store(services), universes, services.commands, schedule, utc_now())
    except (UnknownUniverseError, IdempotencyConflictError) as error:
        raise HTTPException(status.HTTP_409_CONFLICT, str(error) or type(error).__name__) from error
    return Triggered(
        schedule=name,
        universe=schedule.universe,
        run_id=fired.run_id,
        jobs=fired.submitted.run.jobs,
        created=fired.submitted.created,
    )
