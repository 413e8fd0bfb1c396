"""`FakeYahoo`: the state, the scripted failures and the routing of the fake Yahoo Finance.

Endpoints, on every *.yahoo.com host reached through the proxy (or straight on the port):

- `GET https://fc.yahoo.com/`: a 404 page setting the `A3` cookie on .yahoo.com;
- `GET /v1/test/getcrumb` (query1 or query2): 200, the crumb as text;
- `GET guce.yahoo.com/consent`, `POST consent.yahoo.com/v2/collectConsent`,
  `GET guce.yahoo.com/copyConsent`: the consent flow of yfinance's "csrf" cookie strategy;
- `GET /v8/finance/chart/<symbol>` (period1/period2 or range, interval, events,
  includePrePost): the chart JSON, or Yahoo's 404 / 400 / 422 error JSON;
- `GET /v10/finance/quoteSummary/<symbol>`, `GET /v7/finance/quote?symbols=`,
  `GET /ws/fundamentals-timeseries/v1/finance/timeseries/<symbol>`: minimal quote JSON
  (quoteSummary answers 404 for an unknown symbol, as Yahoo), enough for the `Ticker.info`
  fallback yfinance takes when a timezone lookup fails;
- anything else: 404 JSON.

Scripted failures are consumed in the order they were scripted: the first rule that matches a
request (its symbol, and chart requests only unless `chart_only=False`) answers it and counts
down. They come before any other answer, so a rate limit hits an unknown symbol as well.
"""

from __future__ import annotations

import dataclasses
import ssl
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path
from types import TracebackType
from typing import Literal
from urllib.parse import unquote
from zoneinfo import ZoneInfo

import trustme

from tests.support.fake_yahoo import responses
from tests.support.fake_yahoo.market import (
    DAY,
    VALID_INTERVALS,
    VALID_RANGES,
    Bar,
    SymbolSpec,
    bar_timestamps,
    default_symbols,
    limit_error,
    make_bar,
    range_window,
)
from tests.support.fake_yahoo.responses import Response
from tests.support.fake_yahoo.server import ProxyServer, Request

#: What tests may pass as a point in time: epoch seconds, "YYYY-MM-DD" (or an ISO datetime),
#: a date (midnight in the exchange zone), a naive datetime (exchange zone) or an aware one.
#: The same reading as yfinance's own start/end.
When = int | float | str | date | datetime

Kind = Literal["chart", "cookie", "crumb", "consent", "quote", "other", "refused"]
FailureAction = Literal["rate_limit", "outage", "drop"]

CHART_PREFIX = "/v8/finance/chart/"
QUOTE_SUMMARY_PREFIX = "/v10/finance/quoteSummary/"
TIMESERIES_PREFIX = "/ws/fundamentals-timeseries/v1/finance/timeseries/"


@dataclass(frozen=True)
class RequestRecord:
    method: str
    host: str
    path: str
    params: Mapping[str, str]
    #: The HTTP status sent; None when the connection was dropped mid-response.
    status: int | None
    kind: Kind
    #: The symbol of a chart or quote request.
    symbol: str | None


@dataclass
class _Rule:
    action: FailureAction
    remaining: int
    symbol: str | None
    chart_only: bool

    def matches(self, kind: Kind, symbol: str | None) -> bool:
        if self.remaining <= 0 or (self.chart_only and kind != "chart"):
            return False
        return self.symbol is None or self.symbol == symbol


def _classify(request: Request) -> tuple[Kind, str | None]:
    path = request.path
    if request.host == "fc.yahoo.com":
        return "cookie", None
    if path.endswith("/v1/test/getcrumb"):
        return "crumb", None
    if request.host in ("guce.yahoo.com", "consent.yahoo.com"):
        return "consent", None
    if path.startswith(CHART_PREFIX):
        return "chart", unquote(path[len(CHART_PREFIX) :]).upper()
    if path.startswith(QUOTE_SUMMARY_PREFIX):
        return "quote", unquote(path[len(QUOTE_SUMMARY_PREFIX) :]).upper()
    if path.startswith(TIMESERIES_PREFIX):
        return "quote", unquote(path[len(TIMESERIES_PREFIX) :]).upper()
    if path.rstrip("/") == "/v7/finance/quote":
        return "quote", request.params.get("symbols", "").upper() or None
    return "other", None


class FakeYahoo:
    """A fake Yahoo Finance on 127.0.0.1, reachable through `proxy_url` with `ca_bundle`."""

    def __init__(self, directory: Path | None = None, crumb: str = "FakeCrumb.1") -> None:
        self._tempdir: tempfile.TemporaryDirectory[str] | None = None
        if directory is None:
            self._tempdir = tempfile.TemporaryDirectory(prefix="fake-yahoo-")
            directory = Path(self._tempdir.name)
        directory.mkdir(parents=True, exist_ok=True)
        self.crumb = crumb
        ca = trustme.CA(organization_name="Backfill fake Yahoo CA")
        leaf = ca.issue_cert("yahoo.com", "*.yahoo.com", "*.finance.yahoo.com")
        bundle = directory / "fake-yahoo-ca.pem"
        ca.cert_pem.write_to_path(str(bundle))
        #: Path of the PEM file of the test CA, for `curl_cffi.requests.Session(verify=...)`.
        self.ca_bundle = str(bundle)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        leaf.configure_cert(context)
        context.set_alpn_protocols(["http/1.1"])
        self._lock = threading.RLock()
        self._symbols: dict[str, SymbolSpec] = {}
        self._unknown: set[str] = set()
        self._rules: list[_Rule] = []
        self._empty: list[tuple[str, int, int]] = []
        self._log: list[RequestRecord] = []
        self._now: datetime | None = None
        self._server = ProxyServer(self.handle, context, self._refused)
        self.reset()

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FakeYahoo:
        self._server.start()
        return self

    def close(self) -> None:
        self._server.close()
        if self._tempdir is not None:
            self._tempdir.cleanup()

    def __enter__(self) -> FakeYahoo:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def proxy_url(self) -> str:
        """For `yfinance.config.network.proxy` (or a curl_cffi session's proxies)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """Plain HTTP without a proxy: `{base_url}/v8/finance/chart/AAPL?...` works too."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def server_errors(self) -> list[str]:
        """Tracebacks of the fake's own bugs (a request it failed to answer); should be empty."""
        return list(self._server.errors)

    def reset(self) -> None:
        """Back to the default symbols, no scripted failure, an empty log, the real clock."""
        with self._lock:
            self._symbols = default_symbols()
            self._unknown.clear()
            self._rules.clear()
            self._empty.clear()
            self._log.clear()
            self._now = None
            self._server.errors.clear()

    # -- the market ----------------------------------------------------------------------------

    def add_symbol(
        self,
        symbol: str,
        exchange_tz: str = "America/New_York",
        first_trade: date = date(2000, 1, 3),
        *,
        currency: str = "USD",
        instrument_type: str = "EQUITY",
        exchange_name: str = "NMS",
        long_name: str | None = None,
        session_open: time = time(9, 30),
        session_close: time = time(16, 0),
        dividends: Mapping[date, float] | None = None,
        splits: Mapping[date, tuple[int, int]] | None = None,
    ) -> SymbolSpec:
        """Add (or replace) a symbol; it trades every weekday from `first_trade`."""
        spec = SymbolSpec(
            symbol=symbol.upper(),
            exchange_tz=exchange_tz,
            first_trade=first_trade,
            currency=currency,
            instrument_type=instrument_type,
            exchange_name=exchange_name,
            full_exchange_name=exchange_name,
            long_name=long_name if long_name is not None else symbol.upper(),
            session_open=session_open,
            session_close=session_close,
            dividends=dict(dividends or {}),
            splits=dict(splits or {}),
        )
        with self._lock:
            self._symbols[spec.symbol] = spec
            self._unknown.discard(spec.symbol)
        return spec

    def symbol(self, symbol: str) -> SymbolSpec:
        """The spec of a known symbol (KeyError if unknown)."""
        with self._lock:
            spec = self._spec(symbol.upper())
        if spec is None:
            raise KeyError(symbol)
        return spec

    @property
    def symbols(self) -> list[str]:
        with self._lock:
            return sorted(s for s in self._symbols if s not in self._unknown)

    def unknown(self, *symbols: str) -> None:
        """Make symbols unknown: chart and quoteSummary answer 404 (never-added ones already do)."""
        with self._lock:
            self._unknown.update(s.upper() for s in symbols)

    def empty_window(self, symbol: str, start: When, end: When) -> None:
        """Serve no bar (and no event) of `symbol` in [start, end): a valid, empty answer."""
        zone = self.symbol(symbol).zone
        with self._lock:
            self._empty.append((symbol.upper(), self._epoch(start, zone), self._epoch(end, zone)))

    def set_now(self, when: datetime | None) -> None:
        """Freeze the fake's clock (an aware datetime) or, with None, follow the real one.

        The clock decides which bars exist (none after now) and the 422 lookback limits.
        yfinance keeps using the real clock for its own decisions.
        """
        if when is not None and when.tzinfo is None:
            raise ValueError("set_now needs an aware datetime")
        with self._lock:
            self._now = when

    def now(self) -> datetime:
        with self._lock:
            return self._now if self._now is not None else datetime.now(UTC)

    def expected_bars(
        self, symbol: str, interval: str, start: When, end: When | None = None
    ) -> list[datetime]:
        """The bar timestamps (aware, exchange zone) a chart request for [start, end) gets.

        `end` defaults to now. Limits are not checked here (see `limit_error`). A daily bar is
        stamped at the session open: compare dates with yfinance's midnight index. For "30m"
        yfinance asks the fake for "15m" and resamples, which gives the same 30m stamps.
        """
        spec = self.symbol(symbol)
        zone = spec.zone
        with self._lock:
            now = self._now_epoch()
            period2 = now + 1 if end is None else self._epoch(end, zone)
            stamps = self._served(spec, interval, self._epoch(start, zone), period2, now)
        return [datetime.fromtimestamp(t, zone) for t in stamps]

    def limit_error(
        self, interval: str, start: When, end: When, symbol: str = "AAPL"
    ) -> str | None:
        """The 422 description the fake would answer for this window, or None if allowed."""
        zone = self.symbol(symbol).zone
        with self._lock:
            now = self._now_epoch()
        return limit_error(interval, self._epoch(start, zone), self._epoch(end, zone), now)

    def bar(self, symbol: str, interval: str, when: When) -> Bar:
        """The prices of one bar: a function of (symbol, interval, timestamp) only.

        For "1d" and "5d" any time of the day names that day's bar (stamped at the session
        open), so yfinance's midnight index can be passed as is.
        """
        spec = self.symbol(symbol)
        stamp = self._epoch(when, spec.zone)
        if interval in ("1d", "5d"):
            stamp = spec.at(spec.local_date(stamp), spec.session_open)
        return make_bar(spec, interval, stamp)

    def dividends(self, symbol: str) -> dict[date, float]:
        """Ex-date -> amount (served stamped at that day's session open)."""
        return dict(self.symbol(symbol).dividends)

    def splits(self, symbol: str) -> dict[date, float]:
        """Split date -> ratio as yfinance shows it (4:1 is 4.0)."""
        return {d: n / m for d, (n, m) in self.symbol(symbol).splits.items()}

    # -- scripted failures ---------------------------------------------------------------------

    def rate_limit(self, n: int = 1, symbol: str | None = None, *, chart_only: bool = True) -> None:
        """The next n matching requests get HTTP 429 "Too Many Requests" (text), as Yahoo."""
        self._add_rule("rate_limit", n, symbol, chart_only)

    def outage(self, n: int = 1, symbol: str | None = None, *, chart_only: bool = True) -> None:
        """The next n matching requests get Yahoo's HTML "Will be right back..." page, 503."""
        self._add_rule("outage", n, symbol, chart_only)

    def drop(self, n: int = 1, symbol: str | None = None, *, chart_only: bool = True) -> None:
        """The next n matching requests get headers and half a body, then the connection closes."""
        self._add_rule("drop", n, symbol, chart_only)

    def _add_rule(
        self, action: FailureAction, n: int, symbol: str | None, chart_only: bool
    ) -> None:
        if n < 1:
            raise ValueError("n must be at least 1")
        with self._lock:
            self._rules.append(_Rule(action, n, symbol.upper() if symbol else None, chart_only))

    @property
    def pending_failures(self) -> int:
        """How many scripted failures are still to be served."""
        with self._lock:
            return sum(rule.remaining for rule in self._rules)

    # -- the request log -----------------------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        """Every request answered since the last reset, oldest first."""
        with self._lock:
            return list(self._log)

    def chart_requests(self, symbol: str | None = None) -> list[RequestRecord]:
        return [
            r
            for r in self.requests
            if r.kind == "chart" and (symbol is None or r.symbol == symbol.upper())
        ]

    def clear_requests(self) -> None:
        with self._lock:
            self._log.clear()

    # -- serving -------------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        kind, symbol = _classify(request)
        with self._lock:
            rule = next((r for r in self._rules if r.matches(kind, symbol)), None)
            if rule is not None:
                rule.remaining -= 1
            if rule is None or rule.action == "drop":
                response = self._route(request, kind, symbol)
                if rule is not None:
                    response = dataclasses.replace(response, drop=True)
            elif rule.action == "rate_limit":
                response = responses.rate_limited()
            else:
                response = responses.outage()
            self._log.append(
                RequestRecord(
                    method=request.method,
                    host=request.host,
                    path=request.path,
                    params=dict(request.params),
                    status=None if response.drop else response.status,
                    kind=kind,
                    symbol=symbol,
                )
            )
        return response

    def _refused(self, target: str) -> None:
        with self._lock:
            self._log.append(RequestRecord("CONNECT", target, "", {}, 403, "refused", None))

    def _route(self, request: Request, kind: Kind, symbol: str | None) -> Response:
        now = self._now_epoch()
        if kind == "cookie":
            return responses.cookie_response(now)
        if kind == "crumb":
            return responses.crumb_response(self.crumb)
        if kind == "consent":
            if request.path.startswith("/consent"):
                return responses.consent_page()
            return responses.consent_done(now)
        if kind == "chart" and symbol is not None:
            return self._chart(symbol, request.params)
        if kind == "quote" and request.path.startswith(QUOTE_SUMMARY_PREFIX):
            return responses.quote_summary(self._spec(symbol or ""), symbol or "")
        if kind == "quote" and request.path.startswith(TIMESERIES_PREFIX):
            return responses.timeseries(symbol or "", request.params.get("type", ""))
        if kind == "quote":
            names = [s.strip().upper() for s in request.params.get("symbols", "").split(",")]
            specs = [spec for name in names if (spec := self._spec(name)) is not None]
            return responses.quote(specs)
        return responses.generic_not_found(request.path)

    def _chart(self, symbol: str, params: Mapping[str, str]) -> Response:
        spec = self._spec(symbol)
        if spec is None:
            return responses.symbol_not_found()
        interval = params.get("interval", "1d")
        if interval not in VALID_INTERVALS:
            return responses.bad_interval(interval, VALID_INTERVALS)
        now = self._now_epoch()
        range_ = ""
        if "period1" in params or "period2" in params:
            try:
                period1 = int(params.get("period1", "0"))
                period2 = int(params.get("period2", str(now)))
            except ValueError:
                return responses.chart_error(
                    400, "Invalid input - period1 and period2 must be ints"
                )
            if period1 > period2:
                return responses.chart_error(
                    400,
                    "Invalid input - start date cannot be after end date. "
                    f"startDate = {period1}, endDate = {period2}",
                )
            error = limit_error(interval, period1, period2, now)
            if error is not None:
                return responses.chart_error(422, error)
        else:
            range_ = params.get("range", "1mo")
            if range_ not in VALID_RANGES:
                return responses.bad_range(range_)
            period1, period2 = range_window(spec, range_, interval, now)
        stamps = self._served(spec, interval, period1, period2, now)
        events = set(params.get("events", "").replace("|", ",").split(","))
        upper = min(period2, now + 1)

        def in_window(day: date) -> int | None:
            stamp = spec.at(day, spec.session_open)
            if day < spec.first_trade or not period1 <= stamp < upper:
                return None
            return None if self._hidden(spec.symbol, stamp) else stamp

        dividends: dict[int, float] = {}
        if "div" in events:
            for day, amount in sorted(spec.dividends.items()):
                if (stamp := in_window(day)) is not None:
                    dividends[stamp] = amount
        splits: dict[int, tuple[int, int]] = {}
        if events & {"split", "splits"}:
            for day, ratio in sorted(spec.splits.items()):
                if (stamp := in_window(day)) is not None:
                    splits[stamp] = ratio
        recent = bar_timestamps(spec, "1d", now - 10 * DAY, now + 1, now)
        return responses.chart_result(
            spec,
            interval=interval,
            range_=range_,
            period1=period1,
            period2=period2,
            now=now,
            bars=[make_bar(spec, interval, t) for t in stamps],
            latest=make_bar(spec, "1d", recent[-1]) if recent else None,
            dividends=dividends,
            splits=splits,
            prepost=params.get("includePrePost", "false").lower() == "true",
        )

    # -- helpers (call with the lock held) -----------------------------------------------------

    def _spec(self, symbol: str) -> SymbolSpec | None:
        if symbol in self._unknown:
            return None
        return self._symbols.get(symbol)

    def _now_epoch(self) -> int:
        now = self._now if self._now is not None else datetime.now(UTC)
        return int(now.timestamp())

    def _hidden(self, symbol: str, stamp: int) -> bool:
        return any(s == symbol and a <= stamp < b for s, a, b in self._empty)

    def _served(
        self, spec: SymbolSpec, interval: str, period1: int, period2: int, now: int
    ) -> list[int]:
        stamps = bar_timestamps(spec, interval, period1, period2, now)
        return [t for t in stamps if not self._hidden(spec.symbol, t)]

    @staticmethod
    def _epoch(when: When, zone: ZoneInfo) -> int:
        if isinstance(when, int | float):
            return int(when)
        if isinstance(when, str):
            when = date.fromisoformat(when) if len(when) == 10 else datetime.fromisoformat(when)
        if not isinstance(when, datetime):
            when = datetime.combine(when, time(0))
        if when.tzinfo is None:
            when = when.replace(tzinfo=zone)
        return int(when.timestamp())


__all__ = ["FakeYahoo", "RequestRecord", "When"]
