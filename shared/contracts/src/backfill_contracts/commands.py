"""Commands: what a client asks a worker pool to do, on the stream `cmd.<source>`."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    Field,
    TypeAdapter,
    ValidationInfo,
    field_validator,
    model_validator,
)

from backfill_contracts.bars import BarSize
from backfill_contracts.message import Message
from backfill_contracts.modes import JobMode
from backfill_contracts.sources import OPTIONS_BY_SOURCE, known_sources, parse_options

SYMBOL_PATTERN = re.compile(r"[A-Za-z0-9.^=_-]{1,32}")


def as_utc(value: datetime) -> datetime:
    """Naive datetimes (and bare dates) are UTC; aware ones are converted to UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        # Within hours of year 1 or 9999, the UTC instant falls outside what datetime holds
        # (found by the API fuzz): the nearest end of the range stands in for it.
        if value.year == 1:
            return datetime.min.replace(tzinfo=UTC)
        return datetime.max.replace(tzinfo=UTC)


class BarRequest(BaseModel):
    """What to collect: the fields shared by the API request and the CollectBars command.

    `start` is inclusive and `end` exclusive; naive datetimes and plain dates are UTC.
    """

    source: str
    symbol: str
    bar_size: BarSize
    start: datetime
    end: datetime
    # validate_default: an omitted `options` gets the source's defaults like an empty one.
    options: dict[str, Any] = Field(default_factory=dict, validate_default=True)
    time_limit_s: float | None = Field(
        default=None,
        gt=0,
        le=7 * 86400,
        description="Fail the job as `timeout` past this many seconds (default: the worker's).",
    )
    mode: JobMode = Field(
        default=JobMode.FULL,
        description="`full` (the range, skipping chunks already stored), `fill_gaps` (only "
        "what is missing in the range) or `top_up` (what is missing after the last stored bar).",
    )
    force: bool = Field(
        default=False,
        description="Fetch again what is already stored or was answered with no data.",
    )

    @field_validator("start", "end", mode="after")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return as_utc(value)

    @field_validator("source")
    @classmethod
    def _source_known(cls, value: str) -> str:
        if value not in OPTIONS_BY_SOURCE:
            raise ValueError(f"unknown source {value!r}; known sources: {known_sources()}")
        return value

    @field_validator("options")
    @classmethod
    def _options_for_source(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        source = info.data.get("source")
        if source is None:  # the source itself was invalid and is reported on its own
            return value
        return parse_options(source, value).model_dump()

    @field_validator("symbol")
    @classmethod
    def _symbol_shape(cls, value: str) -> str:
        if not SYMBOL_PATTERN.fullmatch(value):  # fullmatch: `$` would let a final newline in
            raise ValueError("symbol must be 1 to 32 characters of A-Z a-z 0-9 . ^ = _ -")
        return value

    @model_validator(mode="after")
    def _range(self) -> BarRequest:
        if self.start >= self.end:
            raise ValueError("start must be before end (start is inclusive, end exclusive)")
        return self


class CollectBars(Message, BarRequest):
    """Collect one symbol's bars over a range. Published once per job."""

    type: Literal["collect_bars"] = "collect_bars"
    job_id: str = Field(min_length=1, max_length=64)
    idempotency_key: str | None = Field(default=None, max_length=200)
    # Ties the job's log lines to the caller's request (the API's X-Correlation-ID header, or a
    # publisher's own id); the job id stands in when it is absent.
    correlation_id: str | None = Field(default=None, max_length=200)
    # 2 and up when the job is run again after it failed or was cancelled (POST .../retry).
    attempt: int = Field(default=1, ge=1)
    # The universe (a named list of series) and the run of it that fanned this job out.
    universe: str | None = Field(default=None, max_length=64)
    universe_run: str | None = Field(default=None, max_length=64)


class CancelJob(Message):
    """Ask for a job to stop: a queued job never starts, a running one stops between chunks."""

    type: Literal["cancel_job"] = "cancel_job"
    job_id: str = Field(min_length=1, max_length=64)
    reason: str = "cancelled by request"


Command = Annotated[CollectBars | CancelJob, Field(discriminator="type")]
COMMAND_ADAPTER: TypeAdapter[CollectBars | CancelJob] = TypeAdapter(Command)


def parse_command(raw: bytes | str) -> CollectBars | CancelJob:
    """Decode a command from its JSON body; raises pydantic.ValidationError with the reasons."""
    return COMMAND_ADAPTER.validate_json(raw)
