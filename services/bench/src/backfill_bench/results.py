"""What a workload hands back: its runs (figures and raw samples) and how to judge them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from backfill_bench.stats import Spread


@dataclass(frozen=True, slots=True)
class Target:
    """The issue's target for a figure; judged on the median over runs (informational)."""

    op: Literal["<=", ">=", "<"]
    value: float

    def met(self, figure: float) -> bool:
        if self.op == "<=":
            return figure <= self.value
        if self.op == ">=":
            return figure >= self.value
        return figure < self.value

    def __str__(self) -> str:
        return f"{self.op} {self.value:,g}"


@dataclass(frozen=True, slots=True)
class Metric:
    """One row of the table: a figure every run reports under `key`.

    `floor` names the floor figure it is compared with, as (workload id, figure key): a latency
    is shown as a multiple of its floor, a throughput as a fraction of it.
    """

    key: str
    label: str
    target: Target | None = None
    floor: tuple[str, str] | None = None


@dataclass(slots=True)
class Run:
    figures: dict[str, float]
    # Raw samples by name: latencies in ms, or (seconds, count) timelines for throughput.
    samples: dict[str, list[Any]] = field(default_factory=dict)
    # What was checked (bar counts, job counts) and anything else worth keeping.
    notes: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Workload:
    id: str
    name: str
    method: str
    metrics: list[Metric]
    runs: list[Run] = field(default_factory=list)
    skipped: str | None = None

    def spread(self, key: str) -> Spread | None:
        values = [run.figures[key] for run in self.runs if key in run.figures]
        return Spread.of(values) if values else None
