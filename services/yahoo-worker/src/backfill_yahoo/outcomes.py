"""What a yfinance failure means for a collector: the outcome, and words for the user.

Observed with yfinance 1.7, exceptions on, retries off (tests/fake_yahoo_tests pin each case):
- unknown symbol: HTTPError 404 (its first two times in a process), then YFTzMissingError;
  YFPricesMissingError "No data found, symbol may be delisted" once its timezone is cached;
- a window past Yahoo's limits (422) or a bad interval (400): YFPricesMissingError carrying
  Yahoo's reason; an empty window: YFPricesMissingError without one;
- 429 twice in a row: YFRateLimitError (yfinance retries one 4xx/5xx by itself);
- an outage page twice: YFDataException; a broken answer: JSONDecodeError; a dropped
  connection: curl_cffi ConnectionError; too slow: curl_cffi Timeout.
"""

from __future__ import annotations

import json

from curl_cffi.requests.exceptions import HTTPError, RequestException, Timeout
from yfinance import exceptions as yf_errors

from backfill_contracts import Outcome

DELISTED = "No data found, symbol may be delisted"


def classify(error: BaseException, symbol: str) -> tuple[Outcome, str]:
    """Map an exception from `Ticker.history` to an outcome and a plain message."""
    unknown = f"Yahoo does not know the symbol {symbol!r}"
    if isinstance(error, yf_errors.YFRateLimitError):
        return Outcome.RATE_LIMITED, "Yahoo answered 429: too many requests"
    if isinstance(error, yf_errors.YFTzMissingError):
        return Outcome.INVALID_SYMBOL, unknown
    if isinstance(error, yf_errors.YFPricesMissingError):
        reason = getattr(error, "yahoo_reason", None)
        if reason is None:
            return Outcome.NO_DATA, f"Yahoo has no prices for {symbol} in this window"
        if DELISTED in str(reason):
            return Outcome.INVALID_SYMBOL, f"{unknown} ({reason})"
        return Outcome.INVALID_REQUEST, f"Yahoo refused the request: {reason}"
    if isinstance(error, yf_errors.YFInvalidPeriodError):
        return Outcome.INVALID_REQUEST, f"Yahoo refused the request: {error}"
    if isinstance(error, HTTPError):
        status = getattr(getattr(error, "response", None), "status_code", None)
        if status == 404:
            return Outcome.INVALID_SYMBOL, unknown
        return Outcome.UPSTREAM_ERROR, f"Yahoo answered HTTP {status}"
    if isinstance(error, Timeout | TimeoutError):
        return Outcome.TIMEOUT, "Yahoo did not answer in time"
    if isinstance(error, RequestException | ConnectionError | OSError):
        return Outcome.UPSTREAM_ERROR, f"could not reach Yahoo: {type(error).__name__}: {error}"
    if isinstance(error, json.JSONDecodeError):
        return Outcome.UPSTREAM_ERROR, "Yahoo sent an answer that is not JSON (an outage page?)"
    return Outcome.UPSTREAM_ERROR, f"Yahoo failed: {type(error).__name__}: {str(error)[:300]}"
