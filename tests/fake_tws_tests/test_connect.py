"""Connecting the real clients to the fake: handshake, startup sync, refusals, disconnects,
IB's connectivity notices."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.fake_tws_tests.conftest import (
    HOST,
    Client,
    Connect,
    ErrorLog,
    next_client_id,
    wait_until,
)
from tests.support.fake_tws import FakeGateway

SERVER_VERSIONS = {"ib_async": 178, "ib_insync": 176}


async def test_connect_completes_with_startup_sync(
    client: Client, fake_tws: FakeGateway, ib_lib: Any
) -> None:
    ib = client.ib
    assert ib.isConnected()
    assert ib.managedAccounts() == ["DU1234567"]
    assert ib.client.serverVersion() == SERVER_VERSIONS[ib_lib.__name__]
    # The account sync got its values (reqAccountUpdates + accountDownloadEnd).
    assert {v.tag for v in ib.accountValues()} >= {"NetLiquidation", "AccountType"}
    assert fake_tws.connected_client_ids == {client.client_id}
    assert fake_tws.errors == []


async def test_farm_status_notices_arrive_on_error_event(client: Client) -> None:
    farm = [(req_id, code) for req_id, code, _ in client.errors.entries]
    assert farm == [(-1, 2104), (-1, 2106), (-1, 2158)]


async def test_current_time(client: Client) -> None:
    now = await client.ib.reqCurrentTimeAsync()
    assert now.tzinfo is not None


async def test_client_id_in_use_makes_connect_time_out(fake_tws: FakeGateway, ib_lib: Any) -> None:
    """TWS answers 326 and closes; neither library gives up on that: connectAsync waits
    for its API-ready event until the timeout, then raises TimeoutError."""
    client_id = next_client_id()
    fake_tws.client_ids_in_use.add(client_id)
    ib = ib_lib.IB()
    errors = ErrorLog()
    ib.errorEvent += errors
    with pytest.raises(TimeoutError):
        await ib.connectAsync(HOST, fake_tws.port, clientId=client_id, timeout=0.5)
    assert errors.entries[0][:2] == (-1, 326)
    assert "client id is already in use" in errors.entries[0][2]
    assert not ib.isConnected()
    assert fake_tws.connected_client_ids == set()


async def test_second_connection_with_a_live_client_id_is_refused(
    connect: Connect, fake_tws: FakeGateway
) -> None:
    first = await connect()
    with pytest.raises(TimeoutError):
        await connect(first.client_id, timeout=0.5)
    assert first.ib.isConnected()
    assert fake_tws.connected_client_ids == {first.client_id}


async def test_drop_connections_disconnects_the_client(
    client: Client, fake_tws: FakeGateway
) -> None:
    disconnected = asyncio.Event()
    client.ib.disconnectedEvent += disconnected.set
    fake_tws.drop_connections()
    await asyncio.wait_for(disconnected.wait(), 2)
    assert not client.ib.isConnected()
    await wait_until(lambda: not fake_tws.connected_client_ids, what="the session to end")


async def test_refused_then_accepted_on_the_same_port(
    connect: Connect, fake_tws: FakeGateway
) -> None:
    port = fake_tws.port
    fake_tws.refuse_connections()
    with pytest.raises(ConnectionRefusedError):
        await connect(timeout=1)
    fake_tws.accept_connections()
    assert fake_tws.port == port
    client = await connect()
    assert client.ib.isConnected()


async def test_refusing_keeps_established_sessions(client: Client, fake_tws: FakeGateway) -> None:
    fake_tws.refuse_connections()
    assert await client.ib.reqCurrentTimeAsync()
    assert fake_tws.connected_client_ids == {client.client_id}


@pytest.mark.parametrize(
    ("data_lost", "code", "text"),
    [
        (True, 1101, "restored - data lost."),
        (False, 1102, "restored - data maintained."),
    ],
)
async def test_connectivity_notices(
    client: Client, fake_tws: FakeGateway, data_lost: bool, code: int, text: str
) -> None:
    fake_tws.connectivity_lost()
    await wait_until(lambda: 1100 in client.errors.codes(), what="1100")
    assert client.errors.entries[-1] == (
        -1,
        1100,
        "Connectivity between IB and Trader Workstation has been lost.",
    )
    fake_tws.connectivity_restored(data_lost=data_lost)
    await wait_until(lambda: code in client.errors.codes(), what=str(code))
    assert client.errors.entries[-1][2].endswith(text)
    # On 1102 both libraries re-request the account summary; the fake answers it.
    assert client.ib.isConnected()
