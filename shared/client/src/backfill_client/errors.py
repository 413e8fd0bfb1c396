"""What can go wrong talking to Backfill; every error says when it happens."""

from __future__ import annotations

from typing import Any


class BackfillError(Exception):
    """Base of every error this client raises."""


class ApiError(BackfillError):
    """Raised when the API answers with an error status; `status` and `detail` say which."""

    def __init__(self, status: int, detail: Any) -> None:
        self.status = status
        self.detail = detail
        super().__init__(f"API error {status}: {detail}")


class AuthError(ApiError):
    """Raised on 401 or 403: the token is missing, wrong, or not allowed to do this."""


class InvalidRequest(ApiError):
    """Raised when a request is refused as invalid (422); `detail` lists the reasons."""


class IdempotencyConflict(InvalidRequest):
    """Raised when an idempotency key already names a job submitted with another request.

    Repeat the first request unchanged to get its job back, or use a new key.
    """


class JobNotFound(ApiError):
    """Raised when no job has this id (or, after a submit, it is still not visible in time)."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        super().__init__(404, f"no job {job_id}")


class UniverseNotFound(ApiError):
    """Raised when no universe has this name, or (with `run_id`) the universe has no such run."""

    def __init__(self, name: str, run_id: str | None = None) -> None:
        self.name = name
        self.run_id = run_id
        what = f"no universe {name}" if run_id is None else f"no run {run_id} of universe {name}"
        super().__init__(404, what)


class ScheduleNotFound(ApiError):
    """Raised when no schedule has this name."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(404, f"no schedule {name}")


class Unavailable(ApiError):
    """Raised on 503: Redis or the database is away, and nothing was accepted. Retry later."""


class WaitTimeout(BackfillError, TimeoutError):
    """Raised by `wait` when the job has not ended within its timeout; the job goes on."""

    def __init__(self, job_id: str, timeout: float, status: str | None) -> None:
        self.job_id = job_id
        self.status = status
        super().__init__(f"job {job_id} did not end within {timeout:g} s (last status: {status})")


class RunWaitTimeout(BackfillError, TimeoutError):
    """Raised by `wait_run` when some job of the run has not ended within its timeout; the run
    goes on. `by_status` counts the run's jobs by status when the wait gave up."""

    def __init__(self, name: str, run_id: str, timeout: float, by_status: dict[str, int]) -> None:
        self.name = name
        self.run_id = run_id
        self.by_status = by_status
        counts = ", ".join(f"{n} {s}" for s, n in sorted(by_status.items())) or "no jobs seen"
        super().__init__(f"run {run_id} of {name} did not end within {timeout:g} s ({counts})")
