"""The real yfinance 1.7 fetching history from the fake Yahoo over HTTPS, through the proxy."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from tests.support.fake_yahoo import FakeYahoo

History = Callable[..., pd.DataFrame]

# yfinance 1.7 itself uses pandas' deprecated inplace= (pandas 3.1 warns on every call).
pytestmark = pytest.mark.filterwarnings("ignore:The inplace keyword:DeprecationWarning")

NEW_YORK = ZoneInfo("America/New_York")


def weekdays_between(start: date, end: date) -> int:
    """Weekdays in [start, end), counted without the fake's help."""
    return sum(1 for n in range((end - start).days) if (start + timedelta(n)).weekday() < 5)


def today_in_new_york() -> date:
    return datetime.now(NEW_YORK).date()


def test_twenty_years_of_daily_aapl_bars(fake_yahoo: FakeYahoo, history: History) -> None:
    start, end = date(2005, 1, 1), date(2025, 1, 1)

    df = history("AAPL", start, end)

    expected = fake_yahoo.expected_bars("AAPL", "1d", start, end)
    assert len(df) == len(expected) == weekdays_between(start, end) == 5217
    assert [t.date() for t in df.index] == [t.date() for t in expected]
    assert str(df.index.tz) == "America/New_York"
    first = fake_yahoo.bar("AAPL", "1d", expected[0])
    assert df.iloc[0][["Open", "High", "Low", "Close", "Adj Close", "Volume"]].tolist() == [
        first.open,
        first.high,
        first.low,
        first.close,
        first.adjclose,
        first.volume,
    ]
    # A fresh process: cookie, crumb, the timezone lookup (range=1d), then the history itself.
    assert [(r.kind, r.status) for r in fake_yahoo.requests] == [
        ("cookie", 404),
        ("crumb", 200),
        ("chart", 200),
        ("chart", 200),
    ]
    tz_lookup, fetch = fake_yahoo.chart_requests("AAPL")
    assert tz_lookup.params["range"] == "1d"
    assert fetch.params["interval"] == "1d"
    assert fetch.params["crumb"] == fake_yahoo.crumb
    assert not [r for r in fake_yahoo.requests if r.status == 422]


def test_seven_days_of_one_minute_bars_in_the_last_29_days(
    fake_yahoo: FakeYahoo, history: History, warm: Callable[[str], None]
) -> None:
    warm("MSFT")
    end = today_in_new_york() - timedelta(days=2)
    start = end - timedelta(days=7)

    df = history("MSFT", start, end, interval="1m")

    expected = fake_yahoo.expected_bars("MSFT", "1m", start, end)
    assert len(df) == len(expected) == 390 * weekdays_between(start, end)
    assert list(df.index) == expected
    assert df.index[0].time().isoformat() == "09:30:00"
    assert df.index[389].time().isoformat() == "15:59:00"
    (fetch,) = fake_yahoo.chart_requests()
    assert (fetch.params["interval"], fetch.status) == ("1m", 200)


@pytest.mark.parametrize(
    ("interval", "per_day", "days"),
    [("60m", 7, 28), ("1h", 7, 10), ("90m", 5, 10), ("15m", 26, 3), ("5m", 78, 3), ("30m", 13, 3)],
)
def test_intraday_bars_per_session(
    fake_yahoo: FakeYahoo,
    history: History,
    warm: Callable[[str], None],
    interval: str,
    per_day: int,
    days: int,
) -> None:
    warm("SPY")
    end = today_in_new_york() - timedelta(days=3)
    start = end - timedelta(days=days)

    df = history("SPY", start, end, interval=interval)

    assert len(df) == per_day * weekdays_between(start, end)
    assert list(df.index) == fake_yahoo.expected_bars("SPY", interval, start, end)
    (fetch,) = fake_yahoo.chart_requests()
    # yfinance asks Yahoo for 15m bars when given 30m, and resamples them itself.
    assert fetch.params["interval"] == ("15m" if interval == "30m" else interval)


def test_actions_columns_carry_dividends_and_the_split(
    fake_yahoo: FakeYahoo, history: History
) -> None:
    df = history("AAPL", date(2020, 8, 1), date(2020, 10, 1))

    assert {"Dividends", "Stock Splits"} <= set(df.columns)
    splits = df[df["Stock Splits"] != 0]["Stock Splits"]
    dividends = df[df["Dividends"] != 0]["Dividends"]
    assert [(t.date(), v) for t, v in splits.items()] == [(date(2020, 8, 31), 4.0)]
    assert [(t.date(), v) for t, v in dividends.items()] == [(date(2020, 8, 10), 0.25)]
    assert fake_yahoo.splits("AAPL") == {date(2020, 8, 31): 4.0}
    assert fake_yahoo.dividends("AAPL")[date(2020, 8, 10)] == 0.25
    assert len(df) == len(fake_yahoo.expected_bars("AAPL", "1d", "2020-08-01", "2020-10-01"))


def test_an_etf_also_gets_a_capital_gains_column(history: History) -> None:
    df = history("SPY", date(2021, 3, 1), date(2021, 3, 8))

    assert list(df.columns) == [
        "Open",
        "High",
        "Low",
        "Close",
        "Adj Close",
        "Volume",
        "Dividends",
        "Stock Splits",
        "Capital Gains",
    ]
    assert len(df) == 5


def test_prices_are_a_function_of_symbol_interval_and_time(
    fake_yahoo: FakeYahoo, history: History
) -> None:
    a = history("BRK-B", date(2015, 6, 1), date(2015, 7, 1))
    b = history("BRK-B", date(2015, 6, 15), date(2015, 6, 20))

    pd.testing.assert_frame_equal(a.loc[b.index], b)
    for stamp, row in b.iterrows():
        bar = fake_yahoo.bar("BRK-B", "1d", stamp.date())
        assert (row["Open"], row["Close"]) == (bar.open, bar.close)
        assert row["Low"] <= min(row["Open"], row["Close"]) <= row["High"]


def test_a_symbol_in_another_exchange_zone(fake_yahoo: FakeYahoo, history: History) -> None:
    df = history("EURUSD=X", date(2023, 3, 20), date(2023, 4, 3))

    assert str(df.index.tz) == "Europe/London"
    assert len(df) == 10
    assert (df["Volume"] == 0).all()
    assert fake_yahoo.chart_requests("EURUSD=X")[-1].status == 200


def test_an_added_symbol_starts_at_its_first_trade(fake_yahoo: FakeYahoo, history: History) -> None:
    fake_yahoo.add_symbol("NEWCO", "America/Chicago", first_trade=date(2024, 3, 6))

    df = history("NEWCO", date(2024, 3, 1), date(2024, 3, 13))

    assert [t.date() for t in df.index] == [
        date(2024, 3, 6),
        date(2024, 3, 7),
        date(2024, 3, 8),
        date(2024, 3, 11),
        date(2024, 3, 12),
    ]
    assert str(df.index.tz) == "America/Chicago"


def test_a_period_request_uses_yahoos_range_parameter(
    fake_yahoo: FakeYahoo, fake_yahoo_session: object, warm: Callable[[str], None]
) -> None:
    import yfinance as yf

    warm("QQQ")
    fake_yahoo.set_now(datetime(2024, 6, 14, 21, 0, tzinfo=ZoneInfo("UTC")))  # a Friday, 17:00 NY
    df = yf.Ticker("QQQ", session=fake_yahoo_session).history(period="5d", auto_adjust=False)

    assert [t.date() for t in df.index] == [date(2024, 6, d) for d in (10, 11, 12, 13, 14)]
    (fetch,) = fake_yahoo.chart_requests()
    assert fetch.params["range"] == "5d"
