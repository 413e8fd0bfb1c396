"""`python -m tests.support.fake_tws`: the gateway as a process, for multi-process benchmarks."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.fake_tws_tests.conftest import HOST, next_client_id

REPO = Path(__file__).resolve().parents[2]


@asynccontextmanager
async def gateway_process(*args: str) -> AsyncIterator[tuple[int, Callable[[], Any]]]:
    """Start the process; yields its port and `stop()`, which sends SIGTERM and returns the
    stats it printed."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.support.fake_tws",
        *args,
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    stdout = process.stdout
    try:
        first = await asyncio.wait_for(stdout.readline(), 20)
        port = json.loads(first)["port"]

        async def stop() -> Any:
            process.send_signal(signal.SIGTERM)
            line = await asyncio.wait_for(stdout.readline(), 10)
            assert await asyncio.wait_for(process.wait(), 10) == 0
            return json.loads(line)

        yield port, stop
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_process_serves_and_reports(ib_lib: Any) -> None:
    async with gateway_process("--port", "0", "--pacing-scale", "0.01") as (port, stop):
        ib = ib_lib.IB()
        client_id = next_client_id()
        await ib.connectAsync(HOST, port, clientId=client_id, timeout=5)
        stock = ib_lib.Stock("AAPL", "SMART", "USD")
        end = "20250110 16:00:00 US/Eastern"
        bars = await ib.reqHistoricalDataAsync(stock, end, "1 D", "1 hour", "TRADES", True)
        assert len(bars) == 7
        # The identical request again at once: a violation, the answer empty.
        assert not await ib.reqHistoricalDataAsync(stock, end, "1 D", "1 hour", "TRADES", True)
        ib.disconnect()
        stats = await stop()
    assert stats["served"] == {"historical": 1, "head": 0, "details": 0}
    assert stats["violations"] == 1
    assert stats["violation_details"][0]["rule"] == "identical_within_15s"
    assert stats["per_client_requests"] == {str(client_id): 2}
    assert stats["max_open_seen"] == 1


@pytest.mark.parametrize("ib_lib", ["ib_async"], indirect=True)
async def test_process_takes_rules_from_json(ib_lib: Any, tmp_path: Path) -> None:
    rules = tmp_path / "rules.json"
    rules.write_text(
        json.dumps([{"name": "one_per_minute", "scope": "all", "limit": 1, "window_s": 60}])
    )
    async with gateway_process("--rules-json", str(rules)) as (port, stop):
        ib = ib_lib.IB()
        await ib.connectAsync(HOST, port, clientId=next_client_id(), timeout=5)
        stock = ib_lib.Stock("MSFT", "SMART", "USD")
        for end in ("20250110 16:00:00 US/Eastern", "20250109 16:00:00 US/Eastern"):
            await ib.reqHistoricalDataAsync(stock, end, "1 D", "1 hour", "TRADES", True)
        ib.disconnect()
        stats = await stop()
    assert [v["rule"] for v in stats["violation_details"]] == ["one_per_minute"]
