"""The sources Backfill can collect from, and the options each one accepts.

A source is known here once its worker exists; the API refuses any other name. Options are checked
against the source's model, so an unknown or misspelled key is an error, never silently ignored.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class SourceOptions(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SimOptions(SourceOptions):
    """The synthetic source: deterministic bars, with latency and faults on request."""

    latency_ms: int = Field(default=0, ge=0, le=600_000, description="Delay before each chunk.")
    fail_every: int = Field(
        default=0,
        ge=0,
        description="Every Nth chunk fails once with a transient error (0: never).",
    )


class YahooOptions(SourceOptions):
    """Yahoo Finance: bars are stored raw with the adjusted close beside them; no options yet."""


OPTIONS_BY_SOURCE: dict[str, type[SourceOptions]] = {
    "sim": SimOptions,
    "yahoo": YahooOptions,
}


class UnknownSourceError(ValueError):
    """Raised when a job names a source that has no worker in this version."""


def known_sources() -> list[str]:
    return sorted(OPTIONS_BY_SOURCE)


def parse_options(source: str, options: dict[str, Any]) -> SourceOptions:
    """Validate a job's options for its source; raises UnknownSourceError or ValidationError."""
    model = OPTIONS_BY_SOURCE.get(source)
    if model is None:
        raise UnknownSourceError(f"unknown source {source!r}; known sources: {known_sources()}")
    return model.model_validate(options)
