"""A small Python client for Backfill: jobs (submit, get, wait, cancel), universes and their
runs, and bars as a DataFrame."""

from backfill_client.client import BackfillClient
from backfill_client.errors import (
    ApiError,
    AuthError,
    BackfillError,
    IdempotencyConflict,
    InvalidRequest,
    JobNotFound,
    RunWaitTimeout,
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
    "Unavailable",
    "Universe",
    "UniverseNotFound",
    "WaitTimeout",
]
