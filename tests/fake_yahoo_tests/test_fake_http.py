"""The fake Yahoo on the wire: Yahoo's response shapes, the proxy, TLS, and the market rules."""

from __future__ import annotations

import concurrent.futures
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from curl_cffi import requests as curl
from curl_cffi.requests.exceptions import CertificateVerifyError
from curl_cffi.requests.exceptions import ConnectionError as CurlConnectionError

from tests.support.fake_yahoo import FakeYahoo
from tests.support.fake_yahoo.yfinance_state import new_session

CHART = "/v8/finance/chart/"
# 2024-01-08 00:00 and 2024-01-13 00:00 in New York.
PERIOD = {"period1": "1704690000", "period2": "1705122000"}


def chart(fake: FakeYahoo, symbol: str, **params: str) -> httpx.Response:
    """A plain-HTTP chart request straight to the fake's port (no proxy, no TLS)."""
    return httpx.get(f"{fake.base_url}{CHART}{symbol}", params=params, timeout=5)


def test_plain_http_chart_answer_has_yahoos_shape(fake_yahoo: FakeYahoo) -> None:
    answer = chart(fake_yahoo, "AAPL", interval="1d", events="div,splits", **PERIOD)

    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/json")
    (result,) = answer.json()["chart"]["result"]
    assert answer.json()["chart"]["error"] is None
    assert result["meta"]["exchangeTimezoneName"] == "America/New_York"
    assert result["meta"]["instrumentType"] == "EQUITY"
    assert result["timestamp"] == [
        int(t.timestamp())
        for t in fake_yahoo.expected_bars("AAPL", "1d", "2024-01-08", "2024-01-13")
    ]
    assert datetime.fromtimestamp(result["timestamp"][0], UTC).time().isoformat() == "14:30:00"
    quote = result["indicators"]["quote"][0]
    assert set(quote) == {"open", "high", "low", "close", "volume"}
    assert len(result["indicators"]["adjclose"][0]["adjclose"]) == 5
    (record,) = fake_yahoo.requests
    assert (record.host, record.path, record.status) == (
        "query2.finance.yahoo.com",
        CHART + "AAPL",
        200,
    )


def test_events_as_yahoo_sends_them(fake_yahoo: FakeYahoo) -> None:
    answer = chart(
        fake_yahoo,
        "AAPL",
        interval="1d",
        events="div,splits,capitalGains",
        period1="1596254400",  # 2020-08-01
        period2="1598932800",  # 2020-09-01
    )

    events = answer.json()["chart"]["result"][0]["events"]
    assert events["splits"] == {
        "1598880600": {
            "date": 1598880600,
            "numerator": 4.0,
            "denominator": 1.0,
            "splitRatio": "4:1",
        }
    }
    assert events["dividends"] == {"1597066200": {"amount": 0.25, "date": 1597066200}}


def test_unknown_symbol_is_404_with_yahoos_error(fake_yahoo: FakeYahoo) -> None:
    answer = chart(fake_yahoo, "NOPE", interval="1d", **PERIOD)

    assert answer.status_code == 404
    assert answer.json() == {
        "chart": {
            "result": None,
            "error": {"code": "Not Found", "description": "No data found, symbol may be delisted"},
        }
    }


def test_limits_are_422_with_yahoos_error(fake_yahoo: FakeYahoo) -> None:
    answer = chart(fake_yahoo, "AAPL", interval="1m", **PERIOD)

    assert answer.status_code == 422
    assert answer.json()["chart"] == {
        "result": None,
        "error": {
            "code": "Unprocessable Entity",
            "description": "1m data not available for startTime=1704690000 and "
            "endTime=1705122000. The requested range must be within the last 30 days.",
        },
    }


def test_bad_interval_is_400(fake_yahoo: FakeYahoo) -> None:
    answer = chart(fake_yahoo, "AAPL", interval="7m", **PERIOD)

    assert answer.status_code == 400
    assert answer.json()["chart"]["error"]["code"] == "Bad Request"


def test_rate_limit_outage_and_drop_answers(fake_yahoo: FakeYahoo) -> None:
    fake_yahoo.rate_limit(1)
    fake_yahoo.outage(1, "MSFT")
    fake_yahoo.drop(1, "SPY")

    throttled = chart(fake_yahoo, "SPY", interval="1d", **PERIOD)
    assert (throttled.status_code, throttled.text) == (429, "Too Many Requests\r\n")
    down = chart(fake_yahoo, "MSFT", interval="1d", **PERIOD)
    assert down.status_code == 503
    assert "Will be right back" in down.text
    assert down.headers["content-type"].startswith("text/html")
    with pytest.raises(httpx.RemoteProtocolError):
        chart(fake_yahoo, "SPY", interval="1d", **PERIOD)
    assert chart(fake_yahoo, "SPY", interval="1d", **PERIOD).status_code == 200
    assert fake_yahoo.pending_failures == 0
    assert [r.status for r in fake_yahoo.requests] == [429, 503, None, 200]


def test_failures_scoped_to_one_symbol_leave_others_alone(fake_yahoo: FakeYahoo) -> None:
    fake_yahoo.rate_limit(2, "MSFT")

    assert chart(fake_yahoo, "AAPL", interval="1d", **PERIOD).status_code == 200
    assert chart(fake_yahoo, "MSFT", interval="1d", **PERIOD).status_code == 429
    assert fake_yahoo.pending_failures == 1
    fake_yahoo.reset()
    assert fake_yahoo.pending_failures == 0
    assert fake_yahoo.requests == []


def test_https_through_the_proxy_with_the_test_ca(fake_yahoo: FakeYahoo) -> None:
    proxies: Any = {"https": fake_yahoo.proxy_url}
    with new_session(fake_yahoo) as session:
        cookie = session.get("https://fc.yahoo.com", proxies=proxies)
        crumb = session.get("https://query1.finance.yahoo.com/v1/test/getcrumb", proxies=proxies)
        answer = session.get(
            "https://query1.finance.yahoo.com/v8/finance/chart/EURUSD=X",
            params={"interval": "1d", **PERIOD},
            proxies=proxies,
        )

    assert cookie.status_code == 404
    assert "A3" in session.cookies
    assert crumb.text == fake_yahoo.crumb
    assert answer.json()["chart"]["result"][0]["meta"]["exchangeTimezoneName"] == "Europe/London"
    assert [r.host for r in fake_yahoo.requests] == [
        "fc.yahoo.com",
        "query1.finance.yahoo.com",
        "query1.finance.yahoo.com",
    ]


def test_the_proxy_refuses_other_hosts_and_untrusting_clients(fake_yahoo: FakeYahoo) -> None:
    proxies: Any = {"https": fake_yahoo.proxy_url}
    with new_session(fake_yahoo) as session, pytest.raises(CurlConnectionError, match="403"):
        session.get("https://example.com/", proxies=proxies)
    with curl.Session(impersonate="chrome") as session, pytest.raises(CertificateVerifyError):
        session.get("https://query2.finance.yahoo.com/v1/test/getcrumb", proxies=proxies)
    assert [(r.kind, r.host) for r in fake_yahoo.requests] == [("refused", "example.com:443")]


def test_concurrent_clients(fake_yahoo: FakeYahoo) -> None:
    symbols = ["AAPL", "MSFT", "SPY", "QQQ", "GOOG", "TSLA", "BRK-B", "^GSPC"]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        statuses = list(
            pool.map(lambda s: chart(fake_yahoo, s, interval="1d", **PERIOD).status_code, symbols)
        )

    assert statuses == [200] * len(symbols)
    assert sorted(r.symbol or "" for r in fake_yahoo.chart_requests()) == sorted(symbols)


@pytest.mark.parametrize(
    ("interval", "per_day"),
    [("1m", 390), ("2m", 195), ("5m", 78), ("15m", 26), ("30m", 13), ("60m", 7), ("1h", 7)],
)
def test_intraday_sessions(fake_yahoo: FakeYahoo, interval: str, per_day: int) -> None:
    # 2024-03-08 (EST) to 2024-03-12 (EDT): Friday, Monday; the session stays 09:30-16:00 local.
    bars = fake_yahoo.expected_bars("AAPL", interval, "2024-03-08", "2024-03-12")

    assert len(bars) == 2 * per_day
    assert {t.strftime("%H:%M") for t in bars[::per_day]} == {"09:30"}
    assert bars[0].utcoffset() != bars[-1].utcoffset()


def test_the_clock_decides_which_bars_exist_and_the_limits(fake_yahoo: FakeYahoo) -> None:
    fake_yahoo.set_now(datetime(2024, 6, 12, 15, 0, tzinfo=UTC))  # Wednesday 11:00 New York

    bars = fake_yahoo.expected_bars("AAPL", "60m", "2024-06-10", "2024-06-20")
    assert len(bars) == 7 + 7 + 2  # Monday, Tuesday, then 09:30 and 10:30 on Wednesday
    assert fake_yahoo.limit_error("1m", "2024-05-20", "2024-05-25") is None
    assert fake_yahoo.limit_error("1m", "2024-05-01", "2024-05-05") is not None
    assert "Only 8 days" in (fake_yahoo.limit_error("1m", "2024-06-01", "2024-06-10") or "")
    assert fake_yahoo.limit_error("1d", "1990-01-01", "2024-06-10") is None


def test_daily_bars_start_at_first_trade_and_skip_weekends(fake_yahoo: FakeYahoo) -> None:
    assert fake_yahoo.expected_bars("AAPL", "1d", "1999-12-01", "2000-01-08") == [
        datetime(2000, 1, d, 9, 30, tzinfo=fake_yahoo.symbol("AAPL").zone) for d in (3, 4, 5, 6, 7)
    ]
    tesla = fake_yahoo.expected_bars("TSLA", "1d", date(2010, 6, 1), date(2010, 7, 1))
    assert tesla[0].date() == date(2010, 6, 29)
    weekly = fake_yahoo.expected_bars("AAPL", "1wk", "2024-01-01", "2024-02-01")
    assert [t.date() for t in weekly] == [date(2024, 1, 1) + timedelta(weeks=n) for n in range(5)]
