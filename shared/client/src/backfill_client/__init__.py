"""A small Python client for Backfill: jobs (submit, get, wait, cancel), universes and their
runs, schedules, and bars as a DataFrame."""

from backfill_client.client import BackfillClient
from backfill_client.errors import (
    ApiError,
    AuthError,
    BackfillError,
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
    JobError,
    Progress,
    RunAccepted,
    RunCancelled,
    RunJob,
    RunProgress,
    RunSummary,
    Schedule,
    Triggered,
    Universe,
)

__all__ = [
    "ApiError",
    "AuthError",
    "BackfillClient",
    "BackfillError",
    "IdempotencyConflict",
    "InvalidRequest",
    "Job",
    "JobError",
    "JobNotFound",
    "Progress",
    "RunAccepted",
    "RunCancelled",
    "RunJob",
    "RunProgress",
    "RunSummary",
    "RunWaitTimeout",
    "Schedule",
    "ScheduleNotFound",
    "Triggered",
    "Unavailable",
    "Universe",
    "UniverseNotFound",
    "WaitTimeout",
]
