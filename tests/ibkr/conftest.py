"""The IBKR worker against the fake TWS: the real ib_async / ib_insync client, over TCP.

`ibkr` opens the whole stack (API, projector) with one ibkr worker on the fake gateway, with
every pacing window scaled down alike on both sides, for each client library.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any, Literal, cast

import pytest

from backfill_ibkr.__main__ import build_source
from backfill_ibkr.settings import IbkrSettings
from backfill_worker import Worker
from tests.support.databases import migrated_engine
from tests.support.fake_tws import FakeGateway
from tests.support.stack import Stack, running_stack

SCALE = 0.01  # IB's windows / 100: 10 minutes -> 6 s, 15 s -> 0.15 s, 2 s -> 0.02 s
_worker_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def scaled_gateway() -> Iterator[FakeGateway]:
    gateway = FakeGateway(pacing_scale=SCALE)
    gateway.start()
    yield gateway
    gateway.stop()


@pytest.fixture
def gateway(scaled_gateway: FakeGateway) -> Iterator[FakeGateway]:
    """The fake, reset; the test fails if the worker broke a pacing rule or the fake a bug."""
    scaled_gateway.reset()
    yield scaled_gateway
    violations, errors = scaled_gateway.violations, scaled_gateway.errors
    scaled_gateway.reset()
    assert errors == [], "the fake TWS failed"
    assert violations == [], "the worker broke IB's pacing rules"


@pytest.fixture(params=["ib_async", "ib_insync"])
def ib_library(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@dataclass
class IbkrStack:
    stack: Stack
    gateway: FakeGateway
    library: Literal["ib_async", "ib_insync"]

    async def start_worker(self, **settings: Any) -> Worker:
        number = next(_worker_numbers)
        worker_id = f"{self.stack.names.namespace}ibkr-{number}"
        defaults: dict[str, Any] = {
            "ibkr_pacing_scale": SCALE,
            "ibkr_pacing_margin_s": 0.05,
            "ibkr_connect_timeout_s": 3,
            "ibkr_request_timeout_s": 2,
            "ibkr_farm_wait_s": 2,
            "ibkr_reconnect_min_s": 0.1,
            "ibkr_reconnect_max_s": 0.5,
            "ibkr_endpoint_poll_s": 0.2,
        }
        ibkr = IbkrSettings(
            redis_url=self.stack.redis_url,
            redis_namespace=self.stack.names.namespace,
            worker_id=worker_id,
            ibkr_library=self.library,
            **(
                defaults
                | {"ibkr_port": self.gateway.port}
                | {k: v for k, v in settings.items() if k.startswith("ibkr_")}
            ),
        )
        redis = self.stack.redis
        others = {k: v for k, v in settings.items() if not k.startswith("ibkr_")}
        return await self.stack.start_worker(worker_id, source=build_source(ibkr, redis), **others)

    async def submit(self, symbol: str = "AAPL", **job: Any) -> str:
        fields = {"source": "ibkr", "symbol": symbol, "bar_size": "1m"} | job
        return await self.stack.submit(**fields)


@pytest.fixture
async def ibkr(
    redis_url: str, namespace: str, gateway: FakeGateway, ib_library: str, tmp_path: Any
) -> AsyncIterator[IbkrStack]:
    # SQLite only: the projection is tested on PostgreSQL elsewhere; this is about the source.
    database_url = f"sqlite+aiosqlite:///{tmp_path}/ibkr.db"
    await (await migrated_engine(database_url, migrate=True)).dispose()
    async with running_stack(redis_url, database_url, namespace, with_worker=False) as stack:
        yield IbkrStack(stack, gateway, cast(Literal["ib_async", "ib_insync"], ib_library))
