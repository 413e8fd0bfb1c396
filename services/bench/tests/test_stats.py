"""Percentiles, spreads and CDFs: checked against figures worked out by hand."""

from __future__ import annotations

import pytest

from backfill_bench.stats import Spread, ecdf, latency_figures, percentile


def test_percentiles_interpolate_between_closest_ranks() -> None:
    samples = [4.0, 1.0, 3.0, 2.0]  # sorted: 1 2 3 4
    assert percentile(samples, 0) == 1.0
    assert percentile(samples, 100) == 4.0
    assert percentile(samples, 50) == 2.5
    assert percentile(samples, 99) == pytest.approx(3.97)
    assert percentile([7.0], 99) == 7.0


def test_percentiles_refuse_nothing_and_nonsense() -> None:
    with pytest.raises(ValueError, match="no samples"):
        percentile([], 50)
    with pytest.raises(ValueError, match="out of range"):
        percentile([1.0], 101)


def test_latency_figures_and_spread() -> None:
    figures = latency_figures([float(n) for n in range(1, 101)])
    assert figures == {"p50_ms": 50.5, "p99_ms": pytest.approx(99.01), "max_ms": 100.0}
    assert Spread.of([3.0, 1.0, 2.0]) == Spread(2.0, 1.0, 3.0)
    assert Spread.of([1.0, 4.0]) == Spread(2.5, 1.0, 4.0)


def test_ecdf_steps_to_one() -> None:
    assert ecdf([3.0, 1.0, 2.0, 2.0]) == ([1.0, 2.0, 2.0, 3.0], [0.25, 0.5, 0.75, 1.0])
