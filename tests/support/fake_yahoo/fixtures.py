"""pytest fixtures of the fake Yahoo (register with pytest_plugins in the root conftest).

- `fake_yahoo_server` (session): one `FakeYahoo` for the whole run (a CA and a port).
- `fake_yahoo`: that fake, reset before and after the test (default symbols, no scripted
  failure, empty request log, real clock); fails the test if the fake hit a bug of its own.
- `fake_yahoo_session`: yfinance pointed at `fake_yahoo` (proxy, retries=0,
  hide_exceptions=False, fresh process-wide state and caches in tmp_path) and the curl_cffi
  session to pass to `yfinance.Ticker(..., session=...)`; everything restored afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from curl_cffi.requests import Session

from tests.support.fake_yahoo.fake import FakeYahoo
from tests.support.fake_yahoo.yfinance_state import yfinance_through


@pytest.fixture(scope="session")
def fake_yahoo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeYahoo]:
    fake = FakeYahoo(tmp_path_factory.mktemp("fake_yahoo"))
    fake.start()
    yield fake
    fake.close()


@pytest.fixture
def fake_yahoo(fake_yahoo_server: FakeYahoo) -> Iterator[FakeYahoo]:
    fake_yahoo_server.reset()
    yield fake_yahoo_server
    errors = fake_yahoo_server.server_errors
    fake_yahoo_server.reset()
    if errors:
        pytest.fail("the fake Yahoo failed to answer:\n" + "\n".join(errors))


@pytest.fixture
def fake_yahoo_session(fake_yahoo: FakeYahoo, tmp_path: Path) -> Iterator[Session[Any]]:
    with yfinance_through(fake_yahoo, tmp_path / "yfinance-cache") as session:
        yield session
