"""Yahoo-shaped HTTP responses: chart JSON, Yahoo's error JSON, the 429 text, the outage page."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from http import HTTPStatus
from typing import Any

from tests.support.fake_yahoo.market import (
    INTRADAY_SECONDS,
    VALID_RANGES,
    Bar,
    SymbolSpec,
    canonical_interval,
    weekdays,
)

JSON_TYPE = "application/json;charset=utf-8"


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes = b""
    content_type: str = JSON_TYPE
    headers: tuple[tuple[str, str], ...] = ()
    #: Send the headers and half the body, then close the connection.
    drop: bool = False

    @property
    def reason(self) -> str:
        try:
            return HTTPStatus(self.status).phrase
        except ValueError:
            return "Unknown"


def json_response(
    status: int, payload: object, headers: tuple[tuple[str, str], ...] = ()
) -> Response:
    body = json.dumps(payload, separators=(",", ":")).encode()
    return Response(status, body, JSON_TYPE, headers)


def chart_error(status: int, description: str) -> Response:
    """Yahoo's chart error body: {"chart": {"result": null, "error": {code, description}}}."""
    code = HTTPStatus(status).phrase
    payload = {"chart": {"result": None, "error": {"code": code, "description": description}}}
    return json_response(status, payload)


def symbol_not_found() -> Response:
    return chart_error(404, "No data found, symbol may be delisted")


def bad_interval(interval: str, valid: tuple[str, ...]) -> Response:
    return chart_error(
        400,
        f"Invalid input - interval={interval} is not supported. Valid intervals: "
        f"[{', '.join(valid)}]",
    )


def bad_range(range_: str) -> Response:
    return chart_error(
        400,
        f"Invalid input - range={range_} is not supported. Valid ranges: "
        f"[{', '.join(VALID_RANGES)}]",
    )


def rate_limited() -> Response:
    """What Yahoo sends a client it throttles: HTTP 429 with a plain-text body."""
    return Response(429, b"Too Many Requests\r\n", "text/plain;charset=utf-8")


OUTAGE_PAGE = b"""<!DOCTYPE html>
<html lang="en-us"><head>
<meta http-equiv="content-type" content="text/html; charset=UTF-8">
<meta charset="utf-8">
<title>Yahoo</title>
<meta name="viewport" content="width=device-width,initial-scale=1,minimal-ui">
<meta http-equiv="X-UA-Compatible" content="IE=edge,chrome=1">
</head>
<body>
<div id="wrapper">
  <h1 class="title">Will be right back...</h1>
  <p>Thank you for your patience.</p>
  <p>Our engineers are working quickly to resolve the issue.</p>
</div>
</body></html>
"""


def outage() -> Response:
    """Yahoo's HTML outage page, served with 503."""
    return Response(503, OUTAGE_PAGE, "text/html; charset=utf-8")


def generic_not_found(path: str) -> Response:
    payload = {
        "finance": {
            "result": None,
            "error": {"code": "Not Found", "description": f"HTTP 404 Not Found: {path}"},
        }
    }
    return json_response(404, payload)


def a3_cookie(now: int) -> tuple[str, str]:
    expires = datetime.fromtimestamp(now + 365 * 86_400, UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")
    value = "d=AQABBFakeYahooCookie0000000000000000&S=AQAAAFakeYahoo"
    return (
        "Set-Cookie",
        f"A3={value}; Expires={expires}; Max-Age=31557600; Domain=.yahoo.com; Path=/; "
        "Secure; HttpOnly; SameSite=None",
    )


def cookie_response(now: int) -> Response:
    """fc.yahoo.com: a 404 page that sets the A3 cookie (what yfinance's basic strategy wants)."""
    return Response(404, b"<html><body>Not Found</body></html>", "text/html", (a3_cookie(now),))


CONSENT_PAGE = b"""<!DOCTYPE html><html><body>
<form method="post" action="https://consent.yahoo.com/v2/collectConsent?sessionId=fake-session">
<input type="hidden" name="csrfToken" value="fake-csrf-token">
<input type="hidden" name="sessionId" value="fake-session">
<input type="hidden" name="originalDoneUrl" value="https://finance.yahoo.com/">
<input type="hidden" name="namespace" value="yahoo">
<button type="submit" name="agree" value="agree">Accept all</button>
</form></body></html>
"""


def consent_page() -> Response:
    return Response(200, CONSENT_PAGE, "text/html; charset=utf-8")


def consent_done(now: int) -> Response:
    return Response(200, b"<html><body>OK</body></html>", "text/html", (a3_cookie(now),))


def crumb_response(crumb: str) -> Response:
    return Response(200, crumb.encode(), "text/plain;charset=utf-8")


def _tz_fields(spec: SymbolSpec, at: int) -> tuple[str, int]:
    local = datetime.fromtimestamp(at, spec.zone)
    offset = local.utcoffset() or timedelta(0)
    return local.tzname() or "", int(offset.total_seconds())


def _period(spec: SymbolSpec, day: date, start: time, end: time) -> dict[str, Any]:
    start_ts = spec.at(day, start)
    name, offset = _tz_fields(spec, start_ts)
    return {"timezone": name, "start": start_ts, "end": spec.at(day, end), "gmtoffset": offset}


PRE_OPEN = time(4, 0)
POST_CLOSE = time(20, 0)


def _trading_periods(
    spec: SymbolSpec, period1: int, period2: int, now: int, prepost: bool
) -> list[list[dict[str, Any]]] | dict[str, list[list[dict[str, Any]]]] | None:
    upper = min(period2, now + 1)
    if upper <= period1:
        return None
    first = max(spec.first_trade, spec.local_date(max(period1, 0)))
    days = list(weekdays(first, spec.local_date(upper - 1)))
    if not days:
        return None
    regular = [[_period(spec, d, spec.session_open, spec.session_close)] for d in days]
    if not prepost:
        return regular
    return {
        "pre": [[_period(spec, d, PRE_OPEN, spec.session_open)] for d in days],
        "regular": regular,
        "post": [[_period(spec, d, spec.session_close, POST_CLOSE)] for d in days],
    }


def chart_result(
    spec: SymbolSpec,
    *,
    interval: str,
    range_: str,
    period1: int,
    period2: int,
    now: int,
    bars: list[Bar],
    latest: Bar | None,
    dividends: dict[int, float],
    splits: dict[int, tuple[int, int]],
    prepost: bool,
) -> Response:
    """A successful chart answer; with no bars it is Yahoo's empty one (`quote: [{}]`)."""
    tz_name, gmtoffset = _tz_fields(spec, now)
    today = spec.local_date(now)
    meta: dict[str, Any] = {
        "currency": spec.currency,
        "symbol": spec.symbol,
        "exchangeName": spec.exchange_name,
        "fullExchangeName": spec.full_exchange_name,
        "instrumentType": spec.instrument_type,
        "firstTradeDate": spec.at(spec.first_trade, spec.session_open),
        "regularMarketTime": latest.timestamp if latest else now,
        "hasPrePostMarketData": spec.instrument_type in ("EQUITY", "ETF"),
        "gmtoffset": gmtoffset,
        "timezone": tz_name,
        "exchangeTimezoneName": spec.exchange_tz,
        "regularMarketPrice": latest.close if latest else None,
        "regularMarketDayHigh": latest.high if latest else None,
        "regularMarketDayLow": latest.low if latest else None,
        "regularMarketVolume": latest.volume if latest else None,
        "longName": spec.long_name,
        "shortName": spec.long_name,
        "chartPreviousClose": bars[0].open if bars else None,
        "priceHint": spec.price_decimals,
        "currentTradingPeriod": {
            "pre": _period(spec, today, PRE_OPEN, spec.session_open),
            "regular": _period(spec, today, spec.session_open, spec.session_close),
            "post": _period(spec, today, spec.session_close, POST_CLOSE),
        },
        "dataGranularity": interval,
        "range": range_,
        "validRanges": list(VALID_RANGES),
    }
    intraday = canonical_interval(interval) in INTRADAY_SECONDS
    if intraday:
        periods = _trading_periods(spec, period1, period2, now, prepost)
        if periods is not None:
            meta["tradingPeriods"] = periods
    result: dict[str, Any] = {"meta": meta}
    if bars:
        result["timestamp"] = [b.timestamp for b in bars]
    events: dict[str, Any] = {}
    if dividends:
        events["dividends"] = {str(t): {"amount": a, "date": t} for t, a in dividends.items()}
    if splits:
        events["splits"] = {
            str(t): {
                "date": t,
                "numerator": float(num),
                "denominator": float(den),
                "splitRatio": f"{num}:{den}",
            }
            for t, (num, den) in splits.items()
        }
    if events and bars:
        result["events"] = events
    quote: dict[str, Any] = {}
    if bars:
        quote = {
            "open": [b.open for b in bars],
            "high": [b.high for b in bars],
            "low": [b.low for b in bars],
            "close": [b.close for b in bars],
            "volume": [b.volume for b in bars],
        }
    indicators: dict[str, Any] = {"quote": [quote]}
    if not intraday:
        indicators["adjclose"] = [{"adjclose": [b.adjclose for b in bars]} if bars else {}]
    result["indicators"] = indicators
    return json_response(200, {"chart": {"result": [result], "error": None}})


def quote_summary(spec: SymbolSpec | None, symbol: str) -> Response:
    if spec is None:
        error = {"code": "Not Found", "description": f"Quote not found for symbol: {symbol}"}
        return json_response(404, {"quoteSummary": {"result": None, "error": error}})
    quote_type = {
        "exchange": spec.exchange_name,
        "quoteType": spec.instrument_type,
        "symbol": spec.symbol,
        "shortName": spec.long_name,
        "longName": spec.long_name,
        "exchangeTimezoneName": spec.exchange_tz,
    }
    return json_response(
        200, {"quoteSummary": {"result": [{"quoteType": quote_type}], "error": None}}
    )


def quote(specs: list[SymbolSpec]) -> Response:
    result = [
        {
            "symbol": s.symbol,
            "quoteType": s.instrument_type,
            "currency": s.currency,
            "exchange": s.exchange_name,
            "fullExchangeName": s.full_exchange_name,
            "exchangeTimezoneName": s.exchange_tz,
            "longName": s.long_name,
            "shortName": s.long_name,
        }
        for s in specs
    ]
    return json_response(200, {"quoteResponse": {"result": result, "error": None}})


def timeseries(symbol: str, types: str) -> Response:
    """fundamentals-timeseries with no data points (what Yahoo answers for most requests)."""
    names = [t for t in types.split(",") if t]
    meta = {"symbol": [symbol], "type": names}
    return json_response(200, {"timeseries": {"result": [{"meta": meta}], "error": None}})
