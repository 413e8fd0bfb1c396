"""Validation errors in plain words, for API answers, dead letters and the CLI."""

from __future__ import annotations

from functools import cache
from typing import get_args

from pydantic import ValidationError

from backfill_contracts.commands import CancelJob, CollectBars
from backfill_contracts.events import AnyJobEvent, CleanupRequested, WorkerHeartbeat


@cache
def _union_tags() -> frozenset[str]:
    """The `type` values of every message: pydantic puts them in error locations of unions."""
    members = [CollectBars, CancelJob, WorkerHeartbeat, CleanupRequested, *get_args(AnyJobEvent)]
    return frozenset(str(member.model_fields["type"].default) for member in members)


def describe_validation_error(error: ValidationError) -> str:
    """`field: message; other.field: message`, without pydantic's internal names."""
    tags = _union_tags()
    parts = []
    for item in error.errors(include_url=False):
        location = ".".join(
            str(part)
            for part in item["loc"]
            if not (isinstance(part, str) and ("[" in part or part in tags))
        )
        message = str(item["msg"])
        parts.append(f"{location}: {message}" if location else message)
    return "; ".join(parts)
