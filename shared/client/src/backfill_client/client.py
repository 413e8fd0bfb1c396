"""`BackfillClient`: submit, follow and cancel jobs and universe runs, and read bars, from any
Python program.

Submits go straight to Redis through `backfill_bus.CommandBus` when a `redis_url` is given (the
fastest path: one round trip, no API in between), and through `POST /api/v1/jobs` otherwise.
Everything else, universes included, goes through the API.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Sequence
from datetime import date, datetime
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import ValidationError
from redis.asyncio import Redis

from backfill_bus import CommandBus, IdempotencyConflictError, Names
from backfill_client import frames
from backfill_client.errors import (
    ApiError,
    AuthError,
    IdempotencyConflict,
    InvalidRequest,
    JobNotFound,
    RunWaitTimeout,
    ScheduleNotFound,
    Unavailable,
    UniverseNotFound,
    WaitTimeout,
)
from backfill_client.models import (
    Job,
    RunAccepted,
    RunCancelled,
    RunProgress,
    RunSummary,
    Schedule,
    Triggered,
    Universe,
)
from backfill_contracts import BarRequest

API_PREFIX = "/api/v1"
# A job submitted through Redis shows in the API once the projector has folded it (milliseconds
# usually); `wait` gives it this long before an unknown id is an error.
NOT_FOUND_GRACE_S = 15.0


class BackfillClient:
    """An async client; use it as `async with BackfillClient(...) as client:`.

    `api_url` is the API's base address (`http://127.0.0.1:8000`); `token` is sent as
    `Authorization: Bearer <token>`. With `redis_url`, submits publish on Redis directly, under
    `namespace` (the deployment's BACKFILL_REDIS_NAMESPACE).
    """

    def __init__(
        self,
        api_url: str = "http://127.0.0.1:8000",
        *,
        token: str | None = None,
        redis_url: str | None = None,
        namespace: str = "",
        timeout_s: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        self._http = httpx.AsyncClient(
            base_url=api_url.rstrip("/"), headers=headers, timeout=timeout_s, transport=transport
        )
        self._redis: Redis | None = None
        self._bus: CommandBus | None = None
        if redis_url is not None:
            self._redis = Redis.from_url(redis_url)
            producer = f"client@{socket.gethostname()}"
            self._bus = CommandBus(self._redis, Names(namespace), producer)

    async def __aenter__(self) -> BackfillClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()
        if self._redis is not None:
            await self._redis.aclose()

    async def submit(
        self,
        source: str,
        symbol: str,
        bar_size: str,
        start: datetime | date | str,
        end: datetime | date | str,
        options: dict[str, Any] | None = None,
        *,
        time_limit_s: float | None = None,
        idempotency_key: str | None = None,
        correlation_id: str | None = None,
        mode: str | None = None,
        force: bool | None = None,
    ) -> str:
        """Submit one job and return its id; it is recorded as queued before this returns.

        With an `idempotency_key` that already names a job (for the same request), that job's
        id is returned and nothing new is created. `mode` is `full` (the default), `fill_gaps`
        or `top_up`; `force` fetches again what is stored already.
        """
        fields: dict[str, Any] = {
            "source": source,
            "symbol": symbol,
            "bar_size": bar_size,
            "start": _iso(start),
            "end": _iso(end),
            "options": options or {},
            "time_limit_s": time_limit_s,
        }
        if mode is not None:
            fields["mode"] = mode
        if force is not None:
            fields["force"] = force
        if self._bus is not None:
            return await self._submit_to_redis(fields, idempotency_key, correlation_id)
        headers: dict[str, str] = {}
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        if correlation_id is not None:
            headers["X-Correlation-ID"] = correlation_id
        body = {k: v for k, v in fields.items() if v is not None}
        answer = await self._call("POST", "/jobs", json=body, headers=headers)
        job_id: str = answer["job_id"]
        return job_id

    async def _submit_to_redis(
        self, fields: dict[str, Any], idempotency_key: str | None, correlation_id: str | None
    ) -> str:
        assert self._bus is not None
        try:
            request = BarRequest.model_validate(fields)
        except ValidationError as error:
            reasons = [
                {"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in error.errors()
            ]
            raise InvalidRequest(422, reasons) from error
        try:
            submission = await self._bus.submit(
                request, idempotency_key=idempotency_key, correlation_id=correlation_id
            )
        except IdempotencyConflictError as error:
            raise IdempotencyConflict(422, str(error)) from error
        return submission.job_id

    async def get(self, job_id: str) -> Job:
        """The job as the API shows it now; raises JobNotFound for an unknown id."""
        answer = await self._call("GET", f"/jobs/{job_id}", not_found=JobNotFound(job_id))
        return Job.model_validate(answer)

    # A parameter, not asyncio.timeout: the WaitTimeout raised then says the job's last status.
    async def wait(
        self,
        job_id: str,
        timeout: float = 3600.0,  # noqa: ASYNC109
        *,
        poll_interval_s: float = 0.1,
    ) -> Job:
        """Poll until the job has ended (succeeded, failed or cancelled) and return it.

        The interval grows from `poll_interval_s` to 2 s. Raises WaitTimeout past `timeout`
        (the job goes on), and JobNotFound if the id stays unknown for NOT_FOUND_GRACE_S.
        """
        started = time.monotonic()
        delay = poll_interval_s
        status: str | None = None
        while True:
            try:
                job = await self.get(job_id)
            except JobNotFound:
                if time.monotonic() - started > min(NOT_FOUND_GRACE_S, timeout):
                    raise
            else:
                if job.finished:
                    return job
                status = job.status
            remaining = timeout - (time.monotonic() - started)
            if remaining <= 0:
                raise WaitTimeout(job_id, timeout, status)
            await asyncio.sleep(min(delay, remaining))
            delay = min(delay * 1.5, 2.0)

    async def cancel(self, job_id: str) -> str:
        """Cancel a job: `cancelled` (it was queued) or `cancelling` (it stops within a poll).

        Raises ApiError with status 409 when the job has already ended.
        """
        answer = await self._call("POST", f"/jobs/{job_id}/cancel", not_found=JobNotFound(job_id))
        status: str = answer["status"]
        return status

    async def bars(
        self,
        source: str,
        symbol: str,
        bar_size: str,
        start: datetime | date | str | None = None,
        end: datetime | date | str | None = None,
        price_type: str = "trades",
        adjust: str = "none",
    ) -> Any:
        """The stored bars as a pandas DataFrame indexed by `ts` (UTC), ordered by time.

        Columns: open, high, low, close (float64) and volume (int64). Parquet when pyarrow is
        installed and the API offers it, CSV otherwise. `adjust`: "none" (as stored),
        "splits" or "all" (splits and dividends), back-adjusted by the API (see its
        `GET /api/v1/bars` description).
        """
        params: dict[str, str] = {
            "source": source,
            "symbol": symbol,
            "bar_size": bar_size,
            "price_type": price_type,
        }
        if adjust != "none":
            params["adjust"] = adjust
        if start is not None:
            params["start"] = _iso(start)
        if end is not None:
            params["end"] = _iso(end)
        if _has_pyarrow():
            response = await self._request("GET", "/bars", params={**params, "format": "parquet"})
            if response.status_code == 200:
                return frames.from_parquet(response.content)
            if response.status_code != 422:  # 422: this API has no Parquet; read CSV instead
                _raise_for(response)
        response = await self._request("GET", "/bars", params={**params, "format": "csv"})
        _raise_for(response)
        return frames.from_csv(response.content)

    async def define_universe(
        self,
        name: str,
        source: str,
        symbols: Sequence[str],
        bar_sizes: Sequence[str],
        start: datetime | date | str,
        end: datetime | date | str | None = None,
        options: dict[str, Any] | None = None,
        *,
        time_limit_s: float | None = None,
        description: str | None = None,
    ) -> Universe:
        """Create the universe, or replace the one of this name; needs an `admin` token.

        Raises InvalidRequest (422) when the name is not 1 to 64 of `A-Z a-z 0-9 _ . -`, or
        when any (symbol, bar size) would not be a valid job (unknown source, end before
        start, no symbols...): `detail` says which. Runs already submitted keep their jobs.
        """
        body: dict[str, Any] = {
            "name": name,
            "source": source,
            "symbols": _listed(symbols),
            "bar_sizes": _listed(bar_sizes),
            "start": _iso(start),
            "options": options or {},
        }
        if end is not None:
            body["end"] = _iso(end)
        if time_limit_s is not None:
            body["time_limit_s"] = time_limit_s
        if description is not None:
            body["description"] = description
        return Universe.model_validate(await self._call("PUT", _universe_path(name), json=body))

    async def universe(self, name: str) -> Universe:
        """The universe of this name; raises UniverseNotFound."""
        answer = await self._call("GET", _universe_path(name), not_found=UniverseNotFound(name))
        return Universe.model_validate(answer)

    async def universes(self) -> list[Universe]:
        """Every universe, by name."""
        return [Universe.model_validate(u) for u in await self._call("GET", "/universes")]

    async def delete_universe(self, name: str) -> None:
        """Forget the universe and its runs' records (their jobs and bars stay); raises
        UniverseNotFound when there is none of this name."""
        response = await self._request("DELETE", _universe_path(name))
        if response.status_code == 404:
            raise UniverseNotFound(name)
        _raise_for(response)

    async def run_universe(
        self,
        name: str,
        *,
        run_id: str | None = None,
        mode: str | None = None,
        force: bool | None = None,
    ) -> RunAccepted:
        """Submit one job per (symbol, bar size) of the universe, as one run, and return it.

        Every job is queued before this returns. The same `run_id` again submits nothing new
        and answers with that run's jobs (a retry is safe); without one, a new run is made.
        `mode` (`full`, `fill_gaps`, `top_up`) and `force` apply to every job. Raises
        UniverseNotFound, and ApiError 409 when `run_id` was submitted before with other
        settings (the universe changed since).
        """
        body: dict[str, Any] = {}
        if run_id is not None:
            body["run_id"] = run_id
        if mode is not None:
            body["mode"] = mode
        if force is not None:
            body["force"] = force
        path = f"{_universe_path(name)}/runs"
        answer = await self._call("POST", path, json=body, not_found=UniverseNotFound(name))
        return RunAccepted.model_validate(answer)

    async def runs(self, name: str) -> list[RunSummary]:
        """The universe's runs, newest first; raises UniverseNotFound."""
        path = f"{_universe_path(name)}/runs"
        found = await self._call("GET", path, not_found=UniverseNotFound(name))
        return [RunSummary.model_validate(r) for r in found]

    async def run_progress(self, name: str, run_id: str) -> RunProgress:
        """The run's jobs counted by status, their bars and chunks, and each job; raises
        UniverseNotFound (with `run_id`) for an unknown universe or run."""
        path = _run_path(name, run_id)
        answer = await self._call("GET", path, not_found=UniverseNotFound(name, run_id))
        return RunProgress.model_validate(answer)

    # A parameter, not asyncio.timeout: the RunWaitTimeout raised then counts the jobs.
    async def wait_run(
        self,
        name: str,
        run_id: str,
        timeout: float = 3600.0,  # noqa: ASYNC109
        *,
        poll_interval_s: float = 0.2,
    ) -> RunProgress:
        """Poll until every job of the run has ended (succeeded, failed or cancelled).

        Returns the run's last progress: check `by_status` for failures. The interval grows
        from `poll_interval_s` to 2 s. Raises RunWaitTimeout past `timeout` (the run goes on)
        and UniverseNotFound for an unknown universe or run.
        """
        started = time.monotonic()
        delay = poll_interval_s
        while True:
            progress = await self.run_progress(name, run_id)
            if progress.finished:
                return progress
            remaining = timeout - (time.monotonic() - started)
            if remaining <= 0:
                raise RunWaitTimeout(name, run_id, timeout, progress.by_status)
            await asyncio.sleep(min(delay, remaining))
            delay = min(delay * 1.5, 2.0)

    async def cancel_run(self, name: str, run_id: str) -> RunCancelled:
        """Cancel every job of the run that has not ended (the ended ones stay as they are);
        raises UniverseNotFound (with `run_id`) for an unknown universe or run."""
        path = f"{_run_path(name, run_id)}/cancel"
        answer = await self._call("POST", path, not_found=UniverseNotFound(name, run_id))
        return RunCancelled.model_validate(answer)

    async def define_schedule(
        self,
        name: str,
        universe: str,
        cron: str,
        *,
        timezone: str = "UTC",
        mode: str = "top_up",
        description: str | None = None,
    ) -> Schedule:
        """Create the schedule, or replace the one of this name; needs an `admin` token.

        Each tick of `cron` (five fields) in `timezone` submits one run of `universe`, exactly
        once however many projectors run. Raises InvalidRequest for a bad cron or timezone and
        ApiError 409 when the universe is not defined.
        """
        body: dict[str, Any] = {
            "name": name,
            "universe": universe,
            "cron": cron,
            "timezone": timezone,
            "mode": mode,
        }
        if description is not None:
            body["description"] = description
        return Schedule.model_validate(await self._call("PUT", _schedule_path(name), json=body))

    async def schedule(self, name: str) -> Schedule:
        """The schedule of this name with its next and last tick; raises ScheduleNotFound."""
        path = _schedule_path(name)
        return Schedule.model_validate(
            await self._call("GET", path, not_found=ScheduleNotFound(name))
        )

    async def schedules(self) -> list[Schedule]:
        """Every schedule, by name."""
        return [Schedule.model_validate(s) for s in await self._call("GET", "/schedules")]

    async def pause_schedule(self, name: str) -> Schedule:
        """Stop its ticks; raises ScheduleNotFound."""
        path = f"{_schedule_path(name)}/pause"
        return Schedule.model_validate(
            await self._call("POST", path, not_found=ScheduleNotFound(name))
        )

    async def resume_schedule(self, name: str) -> Schedule:
        """Fire its ticks again from now on (those missed while paused are not caught up)."""
        path = f"{_schedule_path(name)}/resume"
        return Schedule.model_validate(
            await self._call("POST", path, not_found=ScheduleNotFound(name))
        )

    async def trigger_schedule(self, name: str) -> Triggered:
        """Submit the schedule's run now, paused or not (`submit` scope); its `run_id` can be
        followed with wait_run(schedule's universe, run_id). Raises ScheduleNotFound."""
        path = f"{_schedule_path(name)}/trigger"
        return Triggered.model_validate(
            await self._call("POST", path, not_found=ScheduleNotFound(name))
        )

    async def delete_schedule(self, name: str) -> None:
        """Stop and forget the schedule (its runs stay); raises ScheduleNotFound."""
        response = await self._request("DELETE", _schedule_path(name))
        if response.status_code == 404:
            raise ScheduleNotFound(name)
        _raise_for(response)

    async def _call(
        self, method: str, path: str, *, not_found: ApiError | None = None, **kwargs: Any
    ) -> Any:
        """The answer's JSON; a 404 raises `not_found` when given (a typed "no such thing")."""
        response = await self._request(method, path, **kwargs)
        if response.status_code == 404 and not_found is not None:
            raise not_found
        _raise_for(response)
        return response.json()

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return await self._http.request(method, f"{API_PREFIX}{path}", **kwargs)


def _raise_for(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        detail: Any = response.json().get("detail", response.text)
    except ValueError:
        detail = response.text
    status = response.status_code
    if status in (401, 403):
        raise AuthError(status, detail)
    if status == 422:
        if isinstance(detail, str) and detail.startswith("idempotency key "):
            raise IdempotencyConflict(status, detail)
        raise InvalidRequest(status, detail)
    if status == 503:
        raise Unavailable(status, detail)
    raise ApiError(status, detail)


def _universe_path(name: str) -> str:
    # Quoted: whatever the name holds, it cannot address another route (`x/runs`, `..`).
    return f"/universes/{quote(name, safe='')}"


def _run_path(name: str, run_id: str) -> str:
    return f"{_universe_path(name)}/runs/{quote(run_id, safe='')}"


def _schedule_path(name: str) -> str:
    return f"/schedules/{quote(name, safe='')}"


def _listed(values: Sequence[str]) -> list[str]:
    """A lone string is one item (`"1d"`), not a list of its characters."""
    return [values] if isinstance(values, str) else list(values)


def _iso(value: datetime | date | str) -> str:
    return value if isinstance(value, str) else value.isoformat()


def _has_pyarrow() -> bool:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    return True
