"""Backfill's message contracts: commands, events, bar sizes and outcomes (pydantic only)."""

from backfill_contracts.bars import BarBatch, BarSize
from backfill_contracts.commands import (
    SYMBOL_PATTERN,
    BarRequest,
    CancelJob,
    CollectBars,
    as_utc,
    parse_command,
)
from backfill_contracts.events import (
    TERMINAL_EVENT_TYPES,
    AnyJobEvent,
    ChunkCollected,
    ChunkFailed,
    ChunkSpec,
    JobCancelled,
    JobEvent,
    JobFailed,
    JobRetrying,
    JobStarted,
    JobSubmitted,
    JobSucceeded,
    WorkerHeartbeat,
    parse_event,
)
from backfill_contracts.message import DATA_FIELD, SCHEMA_VERSION, Message, utc_now
from backfill_contracts.outcomes import Outcome
from backfill_contracts.sources import (
    OPTIONS_BY_SOURCE,
    SimOptions,
    SourceOptions,
    UnknownSourceError,
    known_sources,
    parse_options,
)

__all__ = [
    "DATA_FIELD",
    "OPTIONS_BY_SOURCE",
    "SCHEMA_VERSION",
    "SYMBOL_PATTERN",
    "TERMINAL_EVENT_TYPES",
    "AnyJobEvent",
    "BarBatch",
    "BarRequest",
    "BarSize",
    "CancelJob",
    "ChunkCollected",
    "ChunkFailed",
    "ChunkSpec",
    "CollectBars",
    "JobCancelled",
    "JobEvent",
    "JobFailed",
    "JobRetrying",
    "JobStarted",
    "JobSubmitted",
    "JobSucceeded",
    "Message",
    "Outcome",
    "SimOptions",
    "SourceOptions",
    "UnknownSourceError",
    "WorkerHeartbeat",
    "as_utc",
    "known_sources",
    "parse_command",
    "parse_event",
    "parse_options",
    "utc_now",
]
