"""Back-adjustment factors, by hand: each bar takes every action whose ex-date is after it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from backfill_readmodel.adjustments import Factors, dividend_step, split_step


def day(d: int) -> datetime:
    return datetime(2024, 3, d, tzinfo=UTC)


def row(
    d: int, price: float, volume: float
) -> tuple[datetime, float, float, float, float, float, None]:
    return (day(d), price, price, price, price, volume, None)


def test_no_action_changes_nothing() -> None:
    factors = Factors.of([])
    assert factors.identity
    assert factors.apply([row(4, 10.0, 5.0)]) == [row(4, 10.0, 5.0)]


def test_a_bar_takes_the_actions_after_it_and_none_on_or_before_it() -> None:
    # A 4:1 split on the 6th, a dividend of 0.5 on a close of 25 (factor 0.98) on the 8th, and
    # a 3:2 split on the 8th as well: the same ex-date's actions multiply.
    factors = Factors.of(
        [split_step(day(6), 4.0), dividend_step(day(8), 0.5, 25.0), split_step(day(8), 1.5)]
    )
    got = factors.apply(
        [row(5, 120.0, 100.0), row(6, 30.0, 400.0), row(7, 30.0, 400.0), row(8, 20.0, 600.0)]
    )
    assert [r[0] for r in got] == [day(5), day(6), day(7), day(8)]
    # 5th: 120 / 4 * 0.98 / 1.5 = 19.6, volume 100 * 4 * 1.5 = 600. 6th (the first split's
    # ex-date: not divided by 4): 30 * 0.98 / 1.5 = 19.6, 400 * 1.5 = 600. 7th: the same.
    # 8th, on the last ex-date: as traded.
    assert [r[4] for r in got] == pytest.approx([19.6, 19.6, 19.6, 20.0], rel=1e-12)
    assert [r[1] for r in got] == [r[4] for r in got]  # open, high, low and close alike
    assert [r[5] for r in got] == pytest.approx([600.0, 600.0, 600.0, 600.0], rel=1e-12)
