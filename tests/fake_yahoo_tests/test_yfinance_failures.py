"""What the real yfinance 1.7 raises for each way Yahoo fails (retries=0, hide_exceptions=False).

yfinance re-sends a chart request once by itself when the answer is >= 400 (after refetching
the crumb with its other cookie strategy), so "429 once" or "503 once" is absorbed, and every
4xx/5xx failure costs two chart requests. Transport errors are not re-sent (retries=0).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
import yfinance as yf
from curl_cffi.requests.exceptions import ConnectionError as CurlConnectionError
from curl_cffi.requests.exceptions import HTTPError
from yfinance.exceptions import (
    YFDataException,
    YFPricesMissingError,
    YFRateLimitError,
    YFTzMissingError,
)

from tests.support.fake_yahoo import FakeYahoo
from tests.support.fake_yahoo.yfinance_state import yfinance_through

History = Callable[..., pd.DataFrame]

# yfinance 1.7 itself uses pandas' deprecated inplace= (pandas 3.1 warns on every call).
pytestmark = pytest.mark.filterwarnings("ignore:The inplace keyword:DeprecationWarning")

Warm = Callable[[str], None]
START, END = date(2024, 1, 8), date(2024, 1, 13)


def chart_statuses(fake: FakeYahoo) -> list[int | None]:
    return [r.status for r in fake.chart_requests()]


def test_unknown_symbol_raises_the_info_fallbacks_http_404_twice_then_tz_missing(
    fake_yahoo: FakeYahoo, history: History
) -> None:
    # No timezone for the symbol (chart 404) -> yfinance falls back to Ticker.info, whose
    # quoteSummary 404 raises; it does that for the first two such symbols of the process.
    for symbol in ("NOPE1", "NOPE2"):
        with pytest.raises(HTTPError, match="HTTP Error 404: Not Found"):
            history(symbol, START, END)
    fake_yahoo.clear_requests()

    with pytest.raises(YFTzMissingError, match=r"^\$NOPE3: possibly delisted; no timezone found$"):
        history("NOPE3", START, END)

    assert chart_statuses(fake_yahoo) == [404, 404]
    assert [r.kind for r in fake_yahoo.requests] == ["chart", "crumb", "chart"]


def test_symbol_gone_after_its_timezone_was_cached_raises_prices_missing(
    fake_yahoo: FakeYahoo, history: History, warm: Warm
) -> None:
    warm("MSFT")  # the timezone is now in yfinance's on-disk cache
    fake_yahoo.unknown("MSFT")

    with pytest.raises(YFPricesMissingError) as caught:
        history("MSFT", START, END)

    assert str(caught.value) == "$MSFT: No data found, symbol may be delisted"
    assert chart_statuses(fake_yahoo) == [404, 404]


def test_one_minute_bars_older_than_30_days_get_422(
    fake_yahoo: FakeYahoo, history: History, warm: Warm
) -> None:
    warm("AAPL")

    with pytest.raises(YFPricesMissingError) as caught:
        history("AAPL", START, END, interval="1m")

    assert str(caught.value) == (
        "$AAPL: 1m data not available for startTime=1704690000 and endTime=1705122000. "
        "The requested range must be within the last 30 days."
    )
    assert caught.value.yahoo_reason is not None
    assert chart_statuses(fake_yahoo) == [422, 422]


def test_one_minute_span_over_8_days_gets_422(
    fake_yahoo: FakeYahoo, history: History, warm: Warm
) -> None:
    warm("AAPL")
    end = datetime.now(ZoneInfo("America/New_York")).date() - timedelta(days=1)

    with pytest.raises(YFPricesMissingError, match="Only 8 days worth of 1m granularity data"):
        history("AAPL", end - timedelta(days=9), end, interval="1m")

    assert chart_statuses(fake_yahoo) == [422, 422]


@pytest.mark.parametrize(("interval", "days"), [("5m", 61), ("90m", 61), ("1h", 731)])
def test_intraday_lookback_limits(
    fake_yahoo: FakeYahoo, history: History, warm: Warm, interval: str, days: int
) -> None:
    warm("AAPL")
    start = datetime.now(ZoneInfo("America/New_York")).date() - timedelta(days=days)

    with pytest.raises(YFPricesMissingError, match=f"within the last {days - 1} days"):
        history("AAPL", start, start + timedelta(days=2), interval=interval)

    assert chart_statuses(fake_yahoo) == [422, 422]


def test_bad_interval_gets_400(fake_yahoo: FakeYahoo, history: History, warm: Warm) -> None:
    warm("AAPL")

    with pytest.raises(YFPricesMissingError, match=r"Invalid input - interval=7m is not supported"):
        history("AAPL", START, END, interval="7m")

    assert chart_statuses(fake_yahoo) == [400, 400]


def test_429_once_is_absorbed_by_yfinances_own_second_try(
    fake_yahoo: FakeYahoo, history: History, warm: Warm
) -> None:
    warm("AAPL")
    fake_yahoo.rate_limit(1)

    df = history("AAPL", START, END)

    assert len(df) == 5
    assert chart_statuses(fake_yahoo) == [429, 200]


def test_429_twice_raises_rate_limit(fake_yahoo: FakeYahoo, history: History, warm: Warm) -> None:
    warm("AAPL")
    fake_yahoo.rate_limit(2)

    with pytest.raises(YFRateLimitError, match=r"^Too Many Requests\. Rate limited\."):
        history("AAPL", START, END)

    assert chart_statuses(fake_yahoo) == [429, 429]


def test_429_twice_on_the_timezone_lookup_raises_rate_limit(
    fake_yahoo: FakeYahoo, history: History
) -> None:
    fake_yahoo.rate_limit(2, "AAPL")

    with pytest.raises(YFRateLimitError):
        history("AAPL", START, END)

    assert [r.params.get("range") for r in fake_yahoo.chart_requests()] == ["1d", "1d"]


def test_503_outage_page_once_is_absorbed(
    fake_yahoo: FakeYahoo, history: History, warm: Warm
) -> None:
    warm("AAPL")
    fake_yahoo.outage(1)

    assert len(history("AAPL", START, END)) == 5
    assert chart_statuses(fake_yahoo) == [503, 200]


def test_503_outage_page_twice_raises_yahoo_is_down(
    fake_yahoo: FakeYahoo, history: History, warm: Warm
) -> None:
    warm("AAPL")
    fake_yahoo.outage(2)

    with pytest.raises(YFDataException) as caught:
        history("AAPL", START, END)

    assert type(caught.value) is YFDataException
    assert str(caught.value) == "*** YAHOO! FINANCE IS CURRENTLY DOWN! ***"
    assert chart_statuses(fake_yahoo) == [503, 503]


def test_503_outage_page_twice_on_the_timezone_lookup_raises_json_decode_error(
    fake_yahoo: FakeYahoo, history: History
) -> None:
    fake_yahoo.outage(2)

    with pytest.raises(json.JSONDecodeError):
        history("AAPL", START, END)


def test_dropped_connection_raises_curl_connection_error_without_a_second_try(
    fake_yahoo: FakeYahoo, history: History, warm: Warm
) -> None:
    warm("AAPL")
    fake_yahoo.drop(1)

    with pytest.raises(CurlConnectionError, match=r"curl: \(56\)"):
        history("AAPL", START, END)

    assert chart_statuses(fake_yahoo) == [None]
    # The next request goes through (a new tunnel).
    assert len(history("AAPL", date(2024, 2, 5), date(2024, 2, 10))) == 5


def test_empty_window_raises_prices_missing(
    fake_yahoo: FakeYahoo, history: History, warm: Warm
) -> None:
    warm("AAPL")
    fake_yahoo.empty_window("AAPL", date(2024, 1, 1), date(2024, 2, 1))

    with pytest.raises(YFPricesMissingError) as caught:
        history("AAPL", START, END)

    assert str(caught.value) == (
        "$AAPL: possibly delisted; no price data found  (1d 2024-01-08 -> 2024-01-13)"
    )
    assert caught.value.yahoo_reason is None
    assert chart_statuses(fake_yahoo) == [200]
    assert fake_yahoo.expected_bars("AAPL", "1d", START, END) == []


def test_a_cached_failure_is_served_again_until_the_cache_is_cleared(
    fake_yahoo: FakeYahoo, history: History, warm: Warm
) -> None:
    warm("AAPL")
    fake_yahoo.outage(2)
    with pytest.raises(YFDataException):
        history("AAPL", START, END)

    with pytest.raises(YFDataException):  # the same window: the 503 comes from yfinance's cache
        history("AAPL", START, END)
    assert chart_statuses(fake_yahoo) == [503, 503]

    yf.data.YfData.cache_get.cache_clear()
    assert len(history("AAPL", START, END)) == 5
    assert chart_statuses(fake_yahoo) == [503, 503, 200]


@pytest.mark.parametrize("mode", ["unknown", "422", "503", "drop", "empty", "429"])
def test_with_yfinance_defaults_failures_are_empty_frames_except_429(
    fake_yahoo: FakeYahoo, tmp_path: Path, mode: str
) -> None:
    with yfinance_through(fake_yahoo, tmp_path, hide_exceptions=True) as session:
        yf.Ticker("AAPL", session=session).history(start="2010-01-04", end="2010-01-06")
        symbol, interval = "AAPL", "1d"
        if mode == "unknown":
            symbol = "NOPE"
        elif mode == "422":
            interval = "1m"
        elif mode == "503":
            fake_yahoo.outage(2)
        elif mode == "drop":
            fake_yahoo.drop(1)
        elif mode == "empty":
            fake_yahoo.empty_window("AAPL", START, END)
        else:
            fake_yahoo.rate_limit(2)
        ticker = yf.Ticker(symbol, session=session)

        def fetch() -> int:
            df = ticker.history(start=START, end=END, interval=interval, auto_adjust=False)
            return len(df)

        if mode == "429":
            with pytest.raises(YFRateLimitError):
                fetch()
        else:
            assert fetch() == 0
