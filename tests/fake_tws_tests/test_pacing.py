"""The fake catches a client that breaks IB's pacing rules (and lets a polite one through).

The tests use a gateway of their own with pacing_scale=0.01: the 15 s and 10 min windows
become 0.15 s and 6 s. Both libraries throttle themselves to 45 messages a second, so a burst
of 61 requests arrives within about a second.

The same-contract rule's 2 s window would be 20 ms at that scale: the order of the jitter of
two Python event loops (a client's gather spreads its six sends over up to ~5 ms now and then,
a GC pause or a loaded machine more), so the tests of that rule run at 0.05 (100 ms).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator, Sequence
from itertools import cycle, islice
from typing import Any

import pytest

from tests.fake_tws_tests.conftest import Client, Connect
from tests.support.fake_tws import PACING, FakeContract, FakeGateway, PacingRule

WHATS = ("TRADES", "MIDPOINT", "BID", "ASK")
SAME_CONTRACT_SCALE = 0.05
#: Synthetic stocks, so that a burst can spread over many contracts.
EXTRA = [FakeContract(f"PX{i}", "STK", "SMART", "USD", 5000 + i) for i in range(16)]


@pytest.fixture
def fine_thread_switching() -> Iterator[None]:
    """The gateway's thread shares the GIL with the test's: by default a thread may wait
    5 ms for it, which shows in windows of tens of ms. Switch every 0.5 ms for the test."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(0.0005)
    yield
    sys.setswitchinterval(before)


@pytest.fixture
def pacing_scale() -> float:
    """Overridden by parametrizing `pacing_scale`."""
    return 0.01


@pytest.fixture
def scaled_tws(fine_thread_switching: None, pacing_scale: float) -> Iterator[FakeGateway]:
    gateway = FakeGateway(pacing_scale=pacing_scale)
    gateway.start()
    for contract in EXTRA:
        gateway.add_contract(contract)
    yield gateway
    errors = gateway.errors
    gateway.stop()
    assert errors == []


@pytest.fixture
async def scaled(connect: Connect, scaled_tws: FakeGateway) -> Client:
    client = await connect(gateway=scaled_tws)
    client.ib.RaiseRequestErrors = True
    return client


def end_at(second: int) -> str:
    """Distinct end times, so that requests are not identical."""
    return f"20250110 15:{second // 60:02d}:{second % 60:02d} US/Eastern"


async def burst(client: Client, requests: Sequence[tuple[Any, str, str, str]]) -> list[Any]:
    """Send (contract, end, bar size, whatToShow) requests at once; results or exceptions."""
    calls = [
        client.ib.reqHistoricalDataAsync(
            contract, end, "60 S" if "sec" in size else "1 D", size, what, True, formatDate=2
        )
        for contract, end, size, what in requests
    ]
    return list(await asyncio.gather(*calls, return_exceptions=True))


def pacing_refusals(results: list[Any], lib: Any) -> list[int]:
    """Indices of the results that are RequestError 162 pacing."""
    return [
        index
        for index, result in enumerate(results)
        if isinstance(result, lib.RequestError) and (result.code, result.message) == (162, PACING)
    ]


def spread(lib: Any, count: int, size: str, what: Sequence[str] = WHATS) -> list[Any]:
    """`count` requests over the synthetic contracts and the given whatToShow values."""
    combos = [(c.symbol, w) for c in EXTRA for w in what]
    return [
        (lib.Stock(symbol, "SMART", "USD"), end_at(i), size, w)
        for i, (symbol, w) in enumerate(islice(cycle(combos), count))
    ]


@pytest.mark.parametrize("pacing_scale", [SAME_CONTRACT_SCALE])
async def test_six_quick_requests_for_one_contract(
    scaled: Client, scaled_tws: FakeGateway, ib_lib: Any
) -> None:
    stock = ib_lib.Stock("AAPL", "SMART", "USD")
    results = await burst(scaled, [(stock, end_at(i), "1 min", "TRADES") for i in range(6)])
    assert pacing_refusals(results, ib_lib) == [5]
    (violation,) = scaled_tws.violations
    assert violation.rule == "same_contract_6_in_2s"
    assert violation.request.end_datetime == end_at(5)
    # Another whatToShow of the same contract is another budget.
    assert not pacing_refusals(await burst(scaled, [(stock, end_at(9), "1 min", "BID")]), ib_lib)


async def test_identical_request_again(
    scaled: Client, scaled_tws: FakeGateway, ib_lib: Any
) -> None:
    request = (ib_lib.Stock("AAPL", "SMART", "USD"), end_at(0), "1 min", "TRADES")
    assert not pacing_refusals(await burst(scaled, [request]), ib_lib)
    assert pacing_refusals(await burst(scaled, [request]), ib_lib) == [0]
    assert [v.rule for v in scaled_tws.violations] == ["identical_within_15s"]
    await asyncio.sleep(0.2)  # past the scaled 15 s
    assert not pacing_refusals(await burst(scaled, [request]), ib_lib)


async def test_61_small_bar_requests_in_10_minutes(
    scaled: Client, scaled_tws: FakeGateway, ib_lib: Any
) -> None:
    results = await burst(scaled, spread(ib_lib, 61, "1 secs"))
    assert pacing_refusals(results, ib_lib) == [60]
    assert [v.rule for v in scaled_tws.violations] == ["small_bars_60_in_10min"]
    assert all(len(r) == 60 for r in results[:60])


async def test_61_one_minute_requests_are_fine(
    scaled: Client, scaled_tws: FakeGateway, ib_lib: Any
) -> None:
    # In two bursts, 50 then 11, within one window: 61 at once could have more than 50 open
    # (another rule) whenever the gateway reads them all before it answers the first.
    requests = spread(ib_lib, 61, "1 min")
    results = await burst(scaled, requests[:50]) + await burst(scaled, requests[50:])
    assert pacing_refusals(results, ib_lib) == []
    assert all(len(bars) > 0 for bars in results)
    assert scaled_tws.violations == []


@pytest.mark.parametrize("pacing_scale", [SAME_CONTRACT_SCALE])
async def test_bid_ask_counts_twice(scaled: Client, scaled_tws: FakeGateway, ib_lib: Any) -> None:
    stock = ib_lib.Stock("AAPL", "SMART", "USD")
    results = await burst(scaled, [(stock, end_at(i), "1 min", "BID_ASK") for i in range(3)])
    assert pacing_refusals(results, ib_lib) == [2]  # 2 + 2 + 2 > 5
    # In the 10-minute rule (bars of 30 s or less): 30 BID_ASK weigh 60, one more breaks it.
    results = await burst(scaled, spread(ib_lib, 30, "5 secs", ["BID_ASK"]))
    assert pacing_refusals(results, ib_lib) == []
    results = await burst(scaled, spread(ib_lib, 1, "5 secs", ["TRADES"]))
    assert pacing_refusals(results, ib_lib) == [0]
    assert [v.rule for v in scaled_tws.violations] == [
        "same_contract_6_in_2s",
        "small_bars_60_in_10min",
    ]


async def test_more_than_50_open_requests(
    scaled: Client, scaled_tws: FakeGateway, ib_lib: Any
) -> None:
    scaled_tws.latency_s = 2.0  # the first answers come after the 51st request is in
    results = await burst(scaled, spread(ib_lib, 51, "1 min"))
    assert pacing_refusals(results, ib_lib) == [50]
    assert [v.rule for v in scaled_tws.violations] == ["open_50"]
    assert scaled_tws.max_open_seen == 50


async def test_rules_are_data(connect: Connect, ib_lib: Any) -> None:
    with FakeGateway(rules=[PacingRule("two_open", "open", limit=2)]) as gateway:
        gateway.latency_s = 0.3
        client = await connect(gateway=gateway)
        client.ib.RaiseRequestErrors = True
        stock = ib_lib.Stock("AAPL", "SMART", "USD")
        same = [(stock, end_at(0), "1 secs", "TRADES")] * 3  # identical: no such rule here
        assert pacing_refusals(await burst(client, same), ib_lib) == [2]
        assert [v.rule for v in gateway.violations] == ["two_open"]


async def test_all_clients_share_one_budget(
    connect: Connect, fake_tws: FakeGateway, ib_lib: Any
) -> None:
    first, second = await connect(), await connect()
    stock = ib_lib.Stock("AAPL", "SMART", "USD")
    await burst(first, [(stock, end_at(i), "1 min", "TRADES") for i in range(3)])
    await burst(second, [(stock, end_at(i), "1 min", "TRADES") for i in range(3, 5)])
    assert fake_tws.violations == []
    second.ib.RaiseRequestErrors = True
    results = await burst(second, [(stock, end_at(5), "1 min", "TRADES")])
    assert pacing_refusals(results, ib_lib) == [0]
    (violation,) = fake_tws.violations
    assert violation.request.client_id == second.client_id
