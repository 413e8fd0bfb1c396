"""The API's answers as typed values, read tolerantly: a missing field never crashes the CLI."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

TERMINAL_STATUSES = frozenset({"succeeded", "failed", "cancelled"})
STATUSES = ("queued", "running", "retrying", "succeeded", "failed", "cancelled")


@dataclass(frozen=True)
class Progress:
    chunks_done: int = 0
    chunks_total: int | None = None  # unknown until the worker has planned the chunks
    bars_stored: int = 0
    percent: float | None = None

    @property
    def fraction(self) -> float:
        """0..1, from `percent` if given, else from the chunk counts."""
        if self.percent is not None:
            value = self.percent / 100
        elif self.chunks_total:
            value = self.chunks_done / self.chunks_total
        else:
            value = 0.0
        return min(max(value, 0.0), 1.0)

    @classmethod
    def from_json(cls, raw: Any) -> Progress:
        if not isinstance(raw, dict):
            return cls()
        return cls(
            chunks_done=_int(raw.get("chunks_done")) or 0,
            chunks_total=_int(raw.get("chunks_total")),
            bars_stored=_int(raw.get("bars_stored")) or 0,
            percent=_float(raw.get("percent")),
        )


@dataclass(frozen=True)
class JobError:
    outcome: str
    message: str

    def __str__(self) -> str:
        return f"{self.outcome}: {self.message}" if self.message else self.outcome


@dataclass(frozen=True)
class Job:
    job_id: str
    symbol: str = ""
    source: str = ""
    bar_size: str = ""
    status: str = "queued"
    progress: Progress = field(default_factory=Progress)
    error: JobError | None = None
    submitted_at: str | None = None
    finished_at: str | None = None

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @classmethod
    def from_json(cls, raw: Any) -> Job:
        if not isinstance(raw, dict):
            raise ValueError(f"expected a job object, got {raw!r:.80}")
        error = raw.get("error")
        return cls(
            job_id=str(raw.get("job_id", "")),
            symbol=str(raw.get("symbol", "")),
            source=str(raw.get("source", "")),
            bar_size=str(raw.get("bar_size", "")),
            status=str(raw.get("status", "queued")),
            progress=Progress.from_json(raw.get("progress")),
            error=JobError(str(error.get("outcome", "error")), str(error.get("message", "")))
            if isinstance(error, dict)
            else None,
            submitted_at=_str(raw.get("submitted_at")),
            finished_at=_str(raw.get("finished_at")),
        )


@dataclass(frozen=True)
class JobPage:
    jobs: list[Job]
    next_cursor: str | None

    @classmethod
    def from_json(cls, raw: Any) -> JobPage:
        items = raw.get("jobs") if isinstance(raw, dict) else None
        if not isinstance(items, list):
            raise ValueError("expected {'jobs': [...]}")
        return cls([Job.from_json(j) for j in items], _str(raw.get("next_cursor")))


@dataclass(frozen=True)
class Stats:
    jobs_total: int
    by_status: dict[str, int]
    by_source: dict[str, dict[str, int]]
    success_rate: float | None
    mean_duration_s: float | None
    bars_stored: int

    @classmethod
    def from_json(cls, raw: Any) -> Stats:
        if not isinstance(raw, dict):
            raise ValueError("expected a stats object")
        by_source = raw.get("by_source")
        return cls(
            jobs_total=_int(raw.get("jobs_total")) or 0,
            by_status=_counts(raw.get("by_status")),
            by_source={str(k): _counts(v) for k, v in by_source.items()}
            if isinstance(by_source, dict)
            else {},
            success_rate=_float(raw.get("success_rate")),
            mean_duration_s=_float(raw.get("mean_duration_s")),
            bars_stored=_int(raw.get("bars_stored")) or 0,
        )


def _counts(raw: Any) -> dict[str, int]:
    if not isinstance(raw, dict):
        return {}
    return {str(k): _int(v) or 0 for k, v in raw.items()}


def _int(raw: Any) -> int | None:
    # bool is an int in Python, but never a count in our API.
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        return None
    return int(raw)


def _float(raw: Any) -> float | None:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        return None
    return float(raw)


def _str(raw: Any) -> str | None:
    return None if raw is None else str(raw)
