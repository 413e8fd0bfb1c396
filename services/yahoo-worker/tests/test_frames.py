"""yfinance frames become UTC bars, an adjusted close, and corporate actions of their own."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pandas as pd

from backfill_contracts import CorporateAction
from backfill_yahoo.frames import from_history


def _frame() -> pd.DataFrame:
    index = pd.DatetimeIndex(
        ["2024-02-08", "2024-02-09", "2024-02-12", "2024-02-13"], tz="America/New_York"
    )
    return pd.DataFrame(
        {
            "Open": [10.0, 11.0, math.nan, 12.0],
            "High": [10.5, 11.5, math.nan, 12.5],
            "Low": [9.5, 10.5, math.nan, 11.5],
            "Close": [10.2, 11.2, math.nan, 12.2],
            "Adj Close": [10.0, 11.0, math.nan, 12.1],
            "Volume": [1000, 2000, 0, 3000],
            "Dividends": [0.0, 0.24, 0.5, 0.0],
            "Stock Splits": [0.0, 0.0, 0.0, 4.0],
        },
        index=index,
    )


def test_rows_become_utc_bars_with_adjusted_close_and_actions() -> None:
    got = from_history(
        _frame(), datetime(2024, 2, 8, tzinfo=UTC), datetime(2024, 2, 14, tzinfo=UTC)
    )
    stamps = [datetime.fromtimestamp(ts, UTC).isoformat() for ts in got.bars.ts]
    # Midnight in New York is 05:00 UTC in winter: bars are stored in UTC.
    assert stamps == [
        "2024-02-08T05:00:00+00:00",
        "2024-02-09T05:00:00+00:00",
        "2024-02-13T05:00:00+00:00",
    ]
    assert got.bars.close == [10.2, 11.2, 12.2]
    assert got.bars.adj_close == [10.0, 11.0, 12.1]
    assert got.bars.volume == [1000.0, 2000.0, 3000.0]
    assert got.exchange_tz == "America/New_York"
    day = 86400
    assert got.actions == [
        CorporateAction(ts=got.bars.ts[1], kind="dividend", value=0.24),
        CorporateAction(ts=got.bars.ts[1] + 3 * day, kind="dividend", value=0.5),  # no bar
        CorporateAction(ts=got.bars.ts[2], kind="split", value=4.0),
    ]


def test_rows_outside_the_window_are_dropped() -> None:
    got = from_history(
        _frame(), datetime(2024, 2, 9, tzinfo=UTC), datetime(2024, 2, 9, 6, tzinfo=UTC)
    )
    assert len(got.bars) == 1
    assert [a.kind for a in got.actions] == ["dividend"]


def test_an_empty_frame_is_no_bars() -> None:
    got = from_history(pd.DataFrame(), datetime(2024, 1, 1, tzinfo=UTC), datetime.now(UTC))
    assert len(got.bars) == 0
    assert got.actions == []
    assert got.exchange_tz is None
