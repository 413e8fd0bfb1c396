"""The pacing governor on real Redis: reservations never break a rule, in any window."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from backfill_contracts import BarSize
from backfill_ibkr.pacing import (
    DEFAULT_RULES,
    PacedRequest,
    PacingGovernor,
    parse_rules,
)

SCALE = 0.01  # 10 minutes -> 6 s, 15 s -> 0.15 s, 2 s -> 0.02 s


@pytest.fixture
def governor(redis: Redis, namespace: str) -> PacingGovernor:
    return PacingGovernor(redis, f"{namespace}pacing", DEFAULT_RULES, scale=SCALE, margin_s=0.05)


def request(n: int, contract: str = "265598:SMART:TRADES", bid_ask: bool = False) -> PacedRequest:
    return PacedRequest(contract, f"{contract}|{n}", BarSize.S1, bid_ask)


def most_in_any_window(times: list[float], window: float) -> int:
    times = sorted(times)
    return max(sum(1 for u in times if t - window < u <= t) for t in times)


async def test_slots_keep_every_rule_with_the_margin(governor: PacingGovernor) -> None:
    slots = [await governor.reserve(request(n)) for n in range(130)]
    times = [slot.at for slot in slots]
    assert times == sorted(times)
    # The login rule: 60 in 6 s (+ the margin); the contract rule: 5 in 0.02 s.
    assert most_in_any_window(times, 600 * SCALE + 0.05 - 1e-3) == 60
    assert most_in_any_window(times, 2 * SCALE + 0.05 - 1e-3) <= 5
    # And it is the speed of light, not below: 120 requests after the first 60 need 2 windows.
    assert times[120] - times[0] == pytest.approx(2 * (6 + 0.05), abs=0.05)
    assert slots[120].binding_rule == "login"
    assert slots[125].binding_rule == "same contract"  # 5 at once, then the next 20 ms


async def test_an_identical_request_waits_its_window(governor: PacingGovernor) -> None:
    first = await governor.reserve(request(1))
    again = await governor.reserve(request(1))
    assert again.at - first.at == pytest.approx(15 * SCALE + 0.05, abs=0.01)
    assert again.binding_rule == "identical request"


async def test_bid_ask_counts_twice(governor: PacingGovernor) -> None:
    slots = [await governor.reserve(request(n, bid_ask=True)) for n in range(31)]
    # 30 BID_ASK requests fill the 60 of a window: the 31st waits for the next one.
    assert slots[30].at - slots[0].at >= 6 + 0.05 - 0.01
    assert most_in_any_window([s.at for s in slots], 6.0) == 30


async def test_several_contracts_share_the_login_budget(governor: PacingGovernor) -> None:
    slots = [await governor.reserve(request(n, contract=f"c{n % 7}")) for n in range(61)]
    assert slots[60].at - slots[0].at >= 6.0
    # Without the contract rule binding: 5 per contract fit in one instant.
    assert [s.at for s in slots[:60]] == [slots[0].at] * 60 or slots[59].at - slots[0].at < 1


async def test_a_slot_given_back_is_free_again(governor: PacingGovernor) -> None:
    first = await governor.reserve(request(1))
    await governor.give_back(first)
    again = await governor.reserve(request(1))
    assert again.at - first.at < 0.05


async def test_rules_are_data_and_a_deployment_may_relax_them(redis: Redis, namespace: str) -> None:
    relaxed = parse_rules(
        '[{"name": "login", "window_s": 600, "limit": 60, "scope": "login", "max_bar_s": 30}]'
    )
    governor = PacingGovernor(redis, f"{namespace}relaxed", relaxed, scale=SCALE, margin_s=0)
    minute = [
        await governor.reserve(PacedRequest("c", f"m{n}", BarSize.M1, False)) for n in range(100)
    ]
    assert minute[-1].at - minute[0].at < 0.5  # 1 min bars: the rule does not apply
    second = [
        await governor.reserve(PacedRequest("c", f"s{n}", BarSize.S5, False)) for n in range(61)
    ]
    assert second[-1].at - second[0].at >= 6.0


@pytest.mark.parametrize(
    "raw",
    ["not json", '[{"name": "x"}]', '[{"name": "x", "window_s": 1, "limit": 0, "scope": "login"}]',
     '[{"name": "x", "window_s": 1, "limit": 1, "scope": "planet"}]'],
)  # fmt: skip
def test_bad_rules_are_refused_with_the_expected_shape(raw: str) -> None:
    with pytest.raises(ValueError, match=r"pacing rule|BACKFILL_IBKR_PACING_RULES"):
        parse_rules(raw)


async def test_at_most_the_open_limit_at_once(redis: Redis, namespace: str) -> None:
    governor = PacingGovernor(redis, f"{namespace}open", max_open=3)
    assert [await governor.open_request(f"r{n}", timeout_s=60) for n in range(4)] == [
        True, True, True, False,
    ]  # fmt: skip
    await governor.close_request("r0")
    assert await governor.open_request("r3", timeout_s=60)
    # An open request whose worker died frees its place at its timeout.
    assert await governor.open_request("x", timeout_s=0.001) is False
    await governor.close_request("r1")
    assert await governor.open_request("short", timeout_s=0.05)
    await asyncio.sleep(0.06)
    assert await governor.open_request("after", timeout_s=60)


async def test_usage_is_kept_for_the_heartbeat(governor: PacingGovernor) -> None:
    for n in range(3):
        await governor.reserve(request(n))
    assert governor.usage["login"] == {"used": 3, "limit": 60, "window_s": 6.0}
