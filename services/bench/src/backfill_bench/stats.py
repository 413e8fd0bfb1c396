"""Percentiles and summaries: pure functions over samples, with no I/O."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation between closest ranks.

    The same definition as numpy's default ("linear"), so figures can be checked by hand.
    """
    if not samples:
        raise ValueError("no samples")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile out of range: {q}")
    ordered = sorted(samples)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def latency_figures(samples_ms: Sequence[float]) -> dict[str, float]:
    """p50, p99 and max of one run's latencies, in milliseconds."""
    return {
        "p50_ms": percentile(samples_ms, 50),
        "p99_ms": percentile(samples_ms, 99),
        "max_ms": max(samples_ms),
    }


@dataclass(frozen=True, slots=True)
class Spread:
    """One figure over several runs: its median and its range."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        if not values:
            raise ValueError("no values")
        return cls(statistics.median(values), min(values), max(values))


def ecdf(samples: Sequence[float]) -> tuple[list[float], list[float]]:
    """The empirical CDF as (sorted values, cumulative fractions), for plotting."""
    ordered = sorted(samples)
    count = len(ordered)
    return ordered, [(index + 1) / count for index in range(count)]
