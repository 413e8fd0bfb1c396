"""Percentiles, spreads and CDFs: checked against figures worked out by hand."""

from __future__ import annotations

import pytest

from backfill_bench.stats import Spread, ecdf, latency_figures, percentile, window_growth_pct


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


def _sawtooth(
    seconds: int, low: float, swing: float, rise_per_s: float
) -> list[tuple[float, float]]:
    """A level sawing over `swing` every 10 s, its base rising by `rise_per_s`."""
    return [(float(t), low + rise_per_s * t + swing * (t % 10) / 9) for t in range(seconds + 1)]


def test_window_growth_sees_through_a_saw_but_not_past_a_leak() -> None:
    flat = _sawtooth(599, 100.0, 20.0, 0.0)  # ends at the top of a tooth, began at the bottom
    first_to_last = (flat[-1][1] - flat[0][1]) / flat[0][1] * 100
    assert first_to_last == pytest.approx(20.0)  # what comparing two samples said
    assert window_growth_pct(flat, 60) == pytest.approx(0.0)

    leaking = _sawtooth(599, 100.0, 20.0, 0.02)  # 12 MB over the soak: a leak
    growth = window_growth_pct(leaking, 60)
    assert 9.0 < growth < 11.0  # its rise, less one window's worth at each end
    assert window_growth_pct([(0.0, 50.0), (1.0, 40.0)], 0.5) == pytest.approx(-20.0)


def test_window_growth_refuses_nothing_and_nonsense() -> None:
    with pytest.raises(ValueError, match="no samples"):
        window_growth_pct([], 60)
    with pytest.raises(ValueError, match="positive"):
        window_growth_pct([(0.0, 1.0)], 0)
