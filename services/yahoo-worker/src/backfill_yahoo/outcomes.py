"""What a yfinance failure means for a collector: the outcome, and words for the user."""

from __future__ import annotations

from curl_cffi.requests.exceptions import RequestException, Timeout
from yfinance import exceptions as yf_errors

from backfill_contracts import Outcome


def classify(error: BaseException, symbol: str) -> tuple[Outcome, str]:
    """Map an exception from `Ticker.history` to an outcome and a plain message."""
    if isinstance(error, yf_errors.YFRateLimitError):
        return Outcome.RATE_LIMITED, "Yahoo answered 429: too many requests"
    if isinstance(error, yf_errors.YFTzMissingError):
        return Outcome.INVALID_SYMBOL, f"Yahoo does not know the symbol {symbol!r}"
    if isinstance(error, yf_errors.YFPricesMissingError):
        return Outcome.NO_DATA, f"Yahoo has no prices for {symbol} in this window"
    if isinstance(error, yf_errors.YFInvalidPeriodError):
        return Outcome.INVALID_REQUEST, f"Yahoo refused the request: {error}"
    if isinstance(error, Timeout | TimeoutError):
        return Outcome.TIMEOUT, "Yahoo did not answer in time"
    if isinstance(error, RequestException | ConnectionError | OSError):
        return Outcome.UPSTREAM_ERROR, f"could not reach Yahoo: {type(error).__name__}: {error}"
    text = str(error)
    if "404" in text or "delisted" in text or "No data found" in text:
        return Outcome.INVALID_SYMBOL, f"Yahoo does not know the symbol {symbol!r}: {text}"
    return Outcome.UPSTREAM_ERROR, f"Yahoo failed: {type(error).__name__}: {text[:300]}"
