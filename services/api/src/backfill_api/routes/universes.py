"""Universes: named lists of instruments with shared settings, submitted as one run of jobs.

A universe is configuration kept in Redis (backfill_bus.universes). Submitting it fans out one
job per (symbol, bar size), each tagged with the universe and the run; the run's view counts
its jobs from the read model; cancelling the run cancels every job of it not yet ended.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Body, HTTPException, Path, Response, status
from pydantic import BaseModel, ConfigDict, Field

from backfill_api.dependencies import ConnectionDep, ServicesDep
from backfill_bus import IdempotencyConflictError
from backfill_bus.universes import (
    NAME_PATTERN,
    RUN_ID_PATTERN,
    RunJob,
    Universe,
    UniverseRun,
    UniverseStore,
    cancel_run,
    new_run_id,
    submit_run,
)
from backfill_contracts import JobMode
from backfill_readmodel import queries
from backfill_readmodel.views import JobView, RunTotals

router = APIRouter(prefix="/universes", tags=["universes"])

NameParam = Annotated[str, Path(pattern=NAME_PATTERN)]
RunIdParam = Annotated[str, Path(pattern=RUN_ID_PATTERN)]
_NOT_FOUND = {"description": "No universe (or run) of this name"}


def _store(services: ServicesDep) -> UniverseStore:
    return UniverseStore(services.redis, services.commands.names)


async def _universe_or_404(services: ServicesDep, name: str) -> Universe:
    universe = await _store(services).get(name)
    if universe is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no universe {name}")
    return universe


async def _run_or_404(services: ServicesDep, name: str, run_id: str) -> UniverseRun:
    await _universe_or_404(services, name)
    run = await _store(services).run(name, run_id)
    if run is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no run {run_id} of universe {name}")
    return run


@router.get("", response_model=list[Universe])
async def list_universes(services: ServicesDep) -> list[Universe]:
    """Every universe, by name."""
    return await _store(services).all()


@router.put(
    "/{name}",
    response_model=Universe,
    responses={200: {"description": "Replaced"}, 201: {"description": "Created"}},
)
async def put_universe(
    name: NameParam, universe: Universe, services: ServicesDep, response: Response
) -> Universe:
    """Create or replace a universe. Every series must be a valid job (422 says which is not).

    Runs already submitted keep their jobs; a replaced universe applies to the next runs.
    """
    if universe.name != name:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"the body names universe {universe.name!r}, the path {name!r}",
        )
    created = await _store(services).put(universe)
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return universe


@router.get("/{name}", response_model=Universe, responses={404: _NOT_FOUND})
async def get_universe(name: NameParam, services: ServicesDep) -> Universe:
    return await _universe_or_404(services, name)


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT, responses={404: _NOT_FOUND})
async def delete_universe(name: NameParam, services: ServicesDep) -> Response:
    """Forget the universe and its runs' records; its jobs and bars stay."""
    if not await _store(services).delete(name):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no universe {name}")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


class RunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{}]})

    run_id: str | None = Field(
        default=None,
        pattern=RUN_ID_PATTERN,
        description="Submitting the same run id again makes no new job: it answers with the "
        "jobs of that run. Absent: a new run (its id in the answer).",
    )
    mode: JobMode = Field(
        default=JobMode.FULL,
        description="The mode of every job of the run: `full`, `fill_gaps` or `top_up`.",
    )
    force: bool = Field(
        default=False, description="Every job fetches again what is stored already."
    )


class RunAccepted(BaseModel):
    universe: str
    run_id: str
    jobs: list[RunJob]
    created: int = Field(description="jobs this request submitted")
    replayed: int = Field(description="jobs an earlier submission of this run had submitted")


@router.post(
    "/{name}/runs",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=RunAccepted,
    responses={
        404: _NOT_FOUND,
        409: {"description": "This run id was submitted with other settings"},
    },
)
async def submit_universe(
    name: NameParam,
    services: ServicesDep,
    request: Annotated[RunRequest | None, Body()] = None,
) -> RunAccepted:
    """Submit one job per (symbol, bar size) of the universe, as one run; idempotent by run id.

    Every job is on the log as queued before this answers, tagged with the universe and run.
    """
    universe = await _universe_or_404(services, name)
    run_id = (request.run_id if request else None) or new_run_id()
    try:
        submitted = await submit_run(
            _store(services),
            services.commands,
            universe,
            run_id,
            mode=request.mode if request else JobMode.FULL,
            force=request.force if request else False,
        )
    except IdempotencyConflictError as error:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"run {run_id} was submitted with other settings (the universe changed since): "
            "submit a new run",
        ) from error
    return RunAccepted(
        universe=name,
        run_id=run_id,
        jobs=submitted.run.jobs,
        created=submitted.created,
        replayed=submitted.replayed,
    )


class RunSummary(BaseModel):
    run_id: str
    submitted_at: datetime
    jobs: int


@router.get("/{name}/runs", response_model=list[RunSummary], responses={404: _NOT_FOUND})
async def list_runs(name: NameParam, services: ServicesDep) -> list[RunSummary]:
    """The universe's runs, newest first."""
    await _universe_or_404(services, name)
    return [
        RunSummary(run_id=r.run_id, submitted_at=r.submitted_at, jobs=len(r.jobs))
        for r in await _store(services).runs(name)
    ]


class RunProgress(RunTotals):
    universe: str
    run_id: str
    submitted_at: datetime
    jobs: list[JobView]


@router.get("/{name}/runs/{run_id}", response_model=RunProgress, responses={404: _NOT_FOUND})
async def run_progress(
    name: NameParam, run_id: RunIdParam, services: ServicesDep, conn: ConnectionDep
) -> RunProgress:
    """The run's aggregate progress: its jobs counted by status, their bars and chunks."""
    run = await _run_or_404(services, name, run_id)
    views = await queries.universe_run_jobs(conn, name, run_id)
    totals = queries.run_totals([j.job_id for j in run.jobs], views)
    return RunProgress(
        **totals.model_dump(),
        universe=name,
        run_id=run_id,
        submitted_at=run.submitted_at,
        jobs=views,
    )


class RunCancelled(BaseModel):
    universe: str
    run_id: str
    cancelled: int = Field(description="queued jobs cancelled at once")
    cancelling: int = Field(description="running jobs that stop within a poll")
    already_ended: int = Field(description="jobs that had succeeded, failed or been cancelled")


@router.post(
    "/{name}/runs/{run_id}/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=RunCancelled,
    responses={404: _NOT_FOUND},
)
async def cancel_universe_run(
    name: NameParam, run_id: RunIdParam, services: ServicesDep, conn: ConnectionDep
) -> RunCancelled:
    """Cancel every job of the run that has not ended; the ended ones stay as they are."""
    run = await _run_or_404(services, name, run_id)
    status_of = {v.job_id: v.status for v in await queries.universe_run_jobs(conn, name, run_id)}
    result = await cancel_run(services.commands, run, status_of)
    return RunCancelled(
        universe=name,
        run_id=run_id,
        cancelled=result.cancelled,
        cancelling=result.cancelling,
        already_ended=result.already_ended,
    )
