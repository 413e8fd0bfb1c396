"""Helpers for driving the real yfinance against the fake Yahoo.

The fixtures `fake_yahoo` and `fake_yahoo_session` come from tests.support.fake_yahoo.fixtures
(registered in the root conftest's pytest_plugins).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import pandas as pd
import pytest
import yfinance as yf

from tests.support.fake_yahoo import FakeYahoo

History = Callable[..., pd.DataFrame]


@pytest.fixture
def history(fake_yahoo_session: Any) -> History:
    """`history(symbol, start, end, interval="1d")`: Ticker.history as the worker calls it."""

    def call(symbol: str, start: Any, end: Any, interval: str = "1d") -> pd.DataFrame:
        ticker = yf.Ticker(symbol, session=fake_yahoo_session)
        return ticker.history(
            start=start, end=end, interval=interval, auto_adjust=False, actions=True
        )

    return call


@pytest.fixture
def warm(fake_yahoo: FakeYahoo, history: History) -> Callable[[str], None]:
    """`warm(symbol)`: one small fetch so the cookie, crumb and the symbol's timezone are
    cached, then an empty request log: the next history() costs exactly its chart requests."""

    def call(symbol: str) -> None:
        history(symbol, date(2010, 1, 4), date(2010, 1, 6))
        fake_yahoo.clear_requests()

    return call
