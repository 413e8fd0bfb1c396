"""pytest fixtures of the fake TWS (register with pytest_plugins in the root conftest).

- `fake_tws_server` (session): one started `FakeGateway` for the whole run.
- `fake_tws`: that gateway reset before and after the test (default contracts, no scripted
  failure, empty logs, no client connected); fails the test if the fake hit a bug of its own.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.fake_tws.gateway import FakeGateway


@pytest.fixture(scope="session")
def fake_tws_server() -> Iterator[FakeGateway]:
    gateway = FakeGateway()
    gateway.start()
    yield gateway
    gateway.stop()


@pytest.fixture
def fake_tws(fake_tws_server: FakeGateway) -> Iterator[FakeGateway]:
    fake_tws_server.reset()
    yield fake_tws_server
    errors = fake_tws_server.errors
    fake_tws_server.reset()
    if errors:
        pytest.fail("the fake TWS failed:\n" + "\n".join(errors))
