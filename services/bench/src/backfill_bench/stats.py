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


def window_growth_pct(samples: Sequence[tuple[float, float]], window_s: float) -> float:
    """Growth of a sampled level over a soak, in percent: the median of the samples in its
    last `window_s` seconds against the median of those in its first (samples: (seconds,
    value), in time order).

    A process's RSS saws up and down with its work (issue #9's projector: 15-20 MB within every
    minute of A3's load), so its first and last samples alone compare wherever the saw was at
    those two moments: they read +10.6 % in a soak whose first and last minutes' medians
    differ by -0.35 %. A level that keeps rising (a leak) still shows, by the whole rise minus
    at most one window's share.
    """
    if not samples:
        raise ValueError("no samples")
    if window_s <= 0:
        raise ValueError(f"window must be positive: {window_s}")
    began, ended = samples[0][0], samples[-1][0]
    first = [value for at, value in samples if at < began + window_s]
    last = [value for at, value in samples if at > ended - window_s]
    before = statistics.median(first)
    return (statistics.median(last) - before) / before * 100
