"""Point the real yfinance at a `FakeYahoo`, and reset yfinance's process-wide state.

yfinance 1.7 keeps state across calls in one process; `reset_yfinance_state` clears all of it:

1. `yfinance.data.YfData` is a singleton (`SingletonMeta._instances`): one session, cookie,
   crumb and cookie strategy ("basic"/"csrf") shared by every Ticker. Dropped, so the next
   Ticker builds a fresh one around the session it is given.
2. `YfData.cache_get`, an lru_cache (64 entries) keyed on (YfData, url, params, timeout). The
   timezone lookup and every `history()` whose end is more than 30 minutes in the past go
   through it, and it caches failed answers too (a 404/422/503 response; not exceptions):
   `cache_clear()`.
3. The SQLite caches in the cache folder: timezones (tkr-tz.db), the Yahoo cookie (cookies.db)
   and ISINs. `set_tz_cache_location` alone does not move caches already opened (the managers
   `_TzCacheManager._tz_cache`, `_CookieCacheManager._Cookie_cache` and
   `_ISINCacheManager._isin_cache` keep their database): their databases are closed, the
   location set, and the managers emptied so they reopen in the new folder.
4. `yfinance.base._tz_info_fetch_ctr`: how many times a missing timezone fell back to
   `Ticker.info` (at most 2 a process). It changes what an unknown symbol raises: set to 0.
5. `yfinance.shared` (`download()`'s results and errors): cleared.

`yfinance_through` also sets and afterwards restores `yfinance.config`: network.proxy,
network.retries and debug.hide_exceptions.

yfinance has no type information, so it is used through `Any` here.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from curl_cffi.requests import Session

from tests.support.fake_yahoo.fake import FakeYahoo


def _module(name: str) -> Any:
    return importlib.import_module(name)


def reset_yfinance_state(cache_dir: Path | str) -> None:
    """Forget every session, cookie, crumb and cached answer; put yfinance's caches in cache_dir."""
    data = _module("yfinance.data")
    cache = _module("yfinance.cache")
    base = _module("yfinance.base")
    shared = _module("yfinance.shared")
    data.YfData.cache_get.cache_clear()
    with data.SingletonMeta._lock:
        data.SingletonMeta._instances.pop(data.YfData, None)
    for manager in (cache._TzDBManager, cache._CookieDBManager, cache._ISINDBManager):
        manager.close_db()
    cache.set_cache_location(str(cache_dir))
    cache._TzCacheManager._tz_cache = None
    cache._CookieCacheManager._Cookie_cache = None
    cache._ISINCacheManager._isin_cache = None
    base._tz_info_fetch_ctr = 0
    with shared._LOCK:
        for table in (shared._DFS, shared._ERRORS, shared._TRACEBACKS, shared._ISINS):
            table.clear()


def new_session(fake: FakeYahoo) -> Session[Any]:
    """A curl_cffi session as the worker makes one, trusting the fake's CA (and only it)."""
    # curl_cffi takes a CA bundle path for `verify` (CURLOPT_CAINFO); its annotation says bool.
    return Session(impersonate="chrome", verify=fake.ca_bundle)  # type: ignore[arg-type]


@contextmanager
def yfinance_through(
    fake: FakeYahoo,
    cache_dir: Path | str,
    *,
    retries: int = 0,
    hide_exceptions: bool = False,
) -> Iterator[Session[Any]]:
    """Configure yfinance for the fake (proxy, retries, exceptions, fresh state in cache_dir),
    yield a session to pass as `Ticker(symbol, session=...)`, and restore everything after."""
    config = _module("yfinance").config
    cache = _module("yfinance.cache")
    saved_config = (
        config.network.proxy,
        config.network.retries,
        config.debug.hide_exceptions,
    )
    saved_location = cache._TzDBManager.get_location()
    reset_yfinance_state(cache_dir)
    config.network.proxy = fake.proxy_url
    config.network.retries = retries
    config.debug.hide_exceptions = hide_exceptions
    session = new_session(fake)
    try:
        yield session
    finally:
        session.close()
        reset_yfinance_state(saved_location)
        (
            config.network.proxy,
            config.network.retries,
            config.debug.hide_exceptions,
        ) = saved_config
