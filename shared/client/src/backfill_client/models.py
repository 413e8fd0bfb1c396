"""A job as the API shows it, in light models: programs need no SQLAlchemy nor read model."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

TERMINAL_STATUSES = frozenset({"succeeded", "failed", "cancelled"})


class _View(BaseModel):
    # Newer APIs may add fields: they are ignored rather than refused.
    model_config = ConfigDict(extra="ignore", frozen=True)


class Progress(_View):
    chunks_done: int
    chunks_total: int
    bars_stored: int
    percent: float


class JobError(_View):
    outcome: str | None
    message: str | None


class Job(_View):
    job_id: str
    source: str
    symbol: str
    bar_size: str
    start: datetime
    end: datetime
    options: dict[str, Any]
    status: str
    attempt: int
    progress: Progress
    error: JobError | None = None
    submitted_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    instrument: str | None = None
    note: str | None = None
    notice: str | None = None

    @property
    def finished(self) -> bool:
        """True once the job succeeded, failed or was cancelled."""
        return self.status in TERMINAL_STATUSES
