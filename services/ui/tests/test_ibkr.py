"""IBKR connection: the workers' view of the gateway, and the endpoint they should use."""

from __future__ import annotations

from nicegui.testing import User

from backfill_bus import encode, read_gateway_endpoint
from services.ui.tests.console import (
    IBKR_INFO,
    beat,
    eventually,
    eventually_async,
    log_in,
    set_values,
    texts,
)
from tests.support.stack import Stack


async def test_the_endpoint_is_written_to_redis_and_cleared(user: User, stack: Stack) -> None:
    ns = stack.names.namespace
    await stack.redis.xadd(stack.names.events, encode(beat(f"{ns}ib-7", "ibkr", IBKR_INFO)))
    await log_in(user)
    await user.open("/ibkr")
    await user.should_see(marker=f"ibkr-worker-{ns}ib-7", retries=40)
    card = texts(user, f"ibkr-worker-{ns}ib-7")
    assert "connected to gw.example:4002" in card
    assert "2104: market data farm connection is OK" in card
    await user.should_see("Not set: every ibkr-worker connects where its own settings say")

    set_values(user, host="bad host")
    user.find(marker="apply-endpoint").click()
    await user.should_see("the gateway host is a hostname or an IP address, without spaces")
    assert await read_gateway_endpoint(stack.redis, stack.names) is None

    set_values(user, host="gateway.internal", port=4001)
    user.find(marker="apply-endpoint").click()

    async def written() -> None:
        endpoint = await read_gateway_endpoint(stack.redis, stack.names)
        assert endpoint is not None
        assert (endpoint.host, endpoint.port) == ("gateway.internal", 4001)
        assert endpoint.changed_by.startswith("console@")

    await eventually_async(written)
    await eventually(
        lambda: _starts(texts(user, "endpoint"), "gateway.internal:4001, set by console@"),
        what="the endpoint shown",
    )
    user.find(marker="clear-endpoint").click()

    async def cleared() -> None:
        assert await read_gateway_endpoint(stack.redis, stack.names) is None

    await eventually_async(cleared)
    await user.should_see("Not set: every ibkr-worker connects where its own settings say")


def _starts(found: list[str], start: str) -> None:
    assert found, found
    assert found[0].startswith(start), found
