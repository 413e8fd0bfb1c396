"""Validation errors in plain words, for API answers, dead letters and the CLI."""

from __future__ import annotations

from pydantic import ValidationError


def describe_validation_error(error: ValidationError) -> str:
    """`field: message; other.field: message`, without pydantic's internal type names."""
    parts = []
    for item in error.errors(include_url=False):
        # Union members and validator names in the location say nothing to a user.
        location = ".".join(
            str(part)
            for part in item["loc"]
            if not (isinstance(part, str) and ("[" in part or part in ("collect_bars", "cancel_job")))
        )
        message = str(item["msg"])
        parts.append(f"{location}: {message}" if location else message)
    return "; ".join(parts)
