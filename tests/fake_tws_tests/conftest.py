"""Fixtures for driving the real ib_async and ib_insync clients against the fake TWS.

`fake_tws` / `fake_tws_server` come from tests.support.fake_tws.fixtures (registered in the
root conftest's pytest_plugins).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import ib_async
import ib_insync
import pytest

from tests.support.fake_tws import FakeGateway

HOST = "127.0.0.1"
#: Short enough that a test waiting for a timeout stays quick, long enough for a loaded CI box.
CONNECT_TIMEOUT_S = 3.0
#: Unique across the run, so no test trips over a client id a previous one left behind.
_client_ids = itertools.count(11)


def next_client_id() -> int:
    return next(_client_ids)


# Both are imported here, at collection: eventkit (under both) asks asyncio for the current
# event loop when first imported, which fails once an earlier test has cleared it.
LIBRARIES = {"ib_async": ib_async, "ib_insync": ib_insync}


@pytest.fixture(params=sorted(LIBRARIES))
def ib_lib(request: pytest.FixtureRequest) -> Any:
    """The client library under test (ib_insync has no type hints)."""
    return LIBRARIES[request.param]


@dataclass
class ErrorLog:
    """What arrived on an IB's errorEvent: (reqId, code, text)."""

    entries: list[tuple[int, int, str]] = field(default_factory=list)

    def __call__(self, req_id: int, code: int, text: str, *_contract: Any) -> None:
        self.entries.append((req_id, code, text))

    def codes(self) -> list[int]:
        return [code for _req_id, code, _text in self.entries]


@dataclass
class Client:
    """A connected IB (of either library) and its error log."""

    ib: Any
    errors: ErrorLog
    client_id: int


class Connect(Protocol):
    def __call__(
        self,
        client_id: int | None = None,
        *,
        gateway: FakeGateway | None = None,
        timeout: float = CONNECT_TIMEOUT_S,
    ) -> Awaitable[Client]: ...


@pytest.fixture
async def connect(fake_tws: FakeGateway, ib_lib: Any) -> AsyncIterator[Connect]:
    """`await connect()`: a new IB connected to the fake, errorEvent logged from the start;
    every IB made is disconnected at the end."""
    made: list[Any] = []

    async def make(
        client_id: int | None = None,
        *,
        gateway: FakeGateway | None = None,
        timeout: float = CONNECT_TIMEOUT_S,
    ) -> Client:
        ib = ib_lib.IB()
        errors = ErrorLog()
        ib.errorEvent += errors
        made.append(ib)
        client_id = client_id or next_client_id()
        port = (gateway or fake_tws).port
        await ib.connectAsync(HOST, port, clientId=client_id, timeout=timeout)
        return Client(ib, errors, client_id)

    yield make
    for ib in made:
        ib.disconnect()


@pytest.fixture
async def client(connect: Connect) -> Client:
    return await connect()


async def wait_until(
    condition: Callable[[], bool], timeout: float = 3.0, what: str = "condition"
) -> None:
    """Poll until `condition()` holds (the fake runs in another thread: no event to await)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)
