"""Submit, cancel and retry, with the same rules as the API's routes, through CommandBus."""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any

from redis.exceptions import RedisError

from backfill_contracts import BarRequest
from backfill_readmodel import queries
from backfill_ui.services import Services

WATCH_KEY = "watch"  # jobs submitted from this browser session: a toast when each one ends
MAX_WATCHED = 200
REDIS_DOWN = "Redis is unavailable, so nothing was accepted: try again in a moment"


@dataclass(frozen=True, slots=True)
class Outcome:
    ok: bool
    message: str


@dataclass(frozen=True, slots=True)
class Submitted:
    symbol: str
    job_id: str


async def submit(services: Services, requests: list[BarRequest]) -> tuple[list[Submitted], str]:
    """One job per request, in order; stops at the first Redis failure and says so."""
    done: list[Submitted] = []
    for request in requests:
        try:
            command = await services.commands.submit(request)
        except RedisError:
            left = ", ".join(r.symbol for r in requests[len(done) :])
            return done, f"{REDIS_DOWN} (not submitted: {left})"
        done.append(Submitted(request.symbol, command.job_id))
    return done, ""


def watch(session: MutableMapping[str, Any], job_ids: list[str]) -> None:
    watched = [job_id for job_id in session.get(WATCH_KEY, []) if job_id not in job_ids]
    session[WATCH_KEY] = (watched + job_ids)[-MAX_WATCHED:]


def unwatch(session: MutableMapping[str, Any], job_ids: set[str]) -> None:
    session[WATCH_KEY] = [job_id for job_id in session.get(WATCH_KEY, []) if job_id not in job_ids]


async def cancel(services: Services, job_id: str) -> Outcome:
    """Like POST /jobs/{id}/cancel: a queued job is cancelled at once, a running one stops soon."""
    async with services.connect() as conn:
        job = await queries.get_job(conn, job_id)
    if job is None:
        return Outcome(False, f"no job {job_id}")
    if job.status in queries.TERMINAL_STATUSES:
        return Outcome(False, f"{job.symbol}: already {job.status}")
    try:
        result = await services.commands.cancel(job_id)
    except RedisError:
        return Outcome(False, REDIS_DOWN)
    if result == "cancelled":
        return Outcome(True, f"{job.symbol}: cancelled")
    return Outcome(True, f"{job.symbol}: cancelling (it stops within a moment)")


async def retry(services: Services, job_id: str) -> Outcome:
    """Like POST /jobs/{id}/retry: a failed or cancelled job runs again after its checkpoints."""
    async with services.connect() as conn:
        job = await queries.get_job(conn, job_id)
        if job is None:
            return Outcome(False, f"no job {job_id}")
        request = await queries.retry_request(conn, job)
    if job.status not in ("failed", "cancelled"):
        message = f"{job.symbol} is {job.status}: only a failed or cancelled job can be retried"
        return Outcome(False, message)
    try:
        command = await services.commands.retry(request, job_id, job.attempt + 1)
    except RedisError:
        return Outcome(False, REDIS_DOWN)
    if command is None:
        return Outcome(False, f"{job.symbol}: attempt {job.attempt + 1} was already requested")
    return Outcome(True, f"{job.symbol}: retrying as attempt {command.attempt}")
