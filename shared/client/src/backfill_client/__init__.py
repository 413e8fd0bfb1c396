"""A small Python client for Backfill: submit, get, wait, cancel, and bars as a DataFrame."""

from backfill_client.client import BackfillClient
from backfill_client.errors import (
    ApiError,
    AuthError,
    BackfillError,
    IdempotencyConflict,
    InvalidRequest,
    JobNotFound,
    Unavailable,
    WaitTimeout,
)
from backfill_client.models import Job, JobError, Progress

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
    "Unavailable",
    "WaitTimeout",
]
