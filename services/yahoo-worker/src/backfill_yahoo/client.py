"""yfinance, set up once per process as a collector needs it (SOURCES.md, Yahoo):

exceptions on (by default yfinance logs a failure and returns an empty frame, indistinguishable
from "no data"), its own retries off (we own retries), one curl_cffi session for every call, the
timezone cache on a persistent folder, and the proxy and CA bundle on every request it makes.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, cast

import yfinance as yf
from curl_cffi import requests as curl_requests
from yfinance.data import YfData

from backfill_yahoo.settings import YahooSettings


class YahooClient:
    def __init__(self, settings: YahooSettings) -> None:
        cache_dir = Path(settings.cache_dir)
        cache_dir.mkdir(parents=True, exist_ok=True)
        yf.set_tz_cache_location(str(cache_dir))
        yf.config.debug.hide_exceptions = False
        yf.config.network.retries = 0
        yf.config.network.proxy = settings.yahoo_proxy_url
        self.session: curl_requests.Session[Any] = curl_requests.Session(impersonate="chrome")
        if settings.yahoo_ca_bundle:
            # curl_cffi takes a bundle path here (it becomes CURLOPT_CAINFO) though typed bool.
            self.session.verify = cast(bool, str(settings.yahoo_ca_bundle))
        if settings.yahoo_proxy_url:
            proxy = settings.yahoo_proxy_url
            self.session.proxies = {"http": proxy, "https": proxy}
        self.timeout_s = settings.request_timeout_s

    def history(self, symbol: str, interval: str, start: datetime, end: datetime) -> Any:
        """One `Ticker.history` call (synchronous: run it in a thread)."""
        ticker = yf.Ticker(symbol, session=self.session)
        return ticker.history(
            start=start,
            end=end,
            interval=interval,
            auto_adjust=False,
            actions=True,
            timeout=self.timeout_s,
        )

    def forget_responses(self) -> None:
        """yfinance caches responses in memory, failures included: clear before a retry."""
        YfData(session=self.session).cache_get.cache_clear()
