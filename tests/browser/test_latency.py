"""How long a chunk takes from the event log to the screen: measured in real Chromium.

Each sample appends a `chunk.collected` event to the log (as a worker does), then polls the
page every animation frame until the new progress shows; the browser's own clock stamps the
moment it appeared. The path measured is the whole one: Redis, the projector's fold into the
database, the console's tail, its re-read of the projection, the websocket push, the DOM.
"""

from __future__ import annotations

import json
import random
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, Playwright, expect

from backfill_bus import encode
from backfill_contracts import (
    BarBatch,
    BarSize,
    ChunkCollected,
    ChunkSpec,
    JobStarted,
    JobSubmitted,
)
from tests.browser.conftest import Console, launch, log_in
from tests.support.events import wait_folded
from tests.support.stack import Stack

pytestmark = pytest.mark.browser

CHUNKS = 20
DAY0 = datetime(2024, 3, 4, tzinfo=UTC)
REPORT = Path(__file__).resolve().parents[2] / "test-artifacts" / "push-latency.json"
SEEN_AT = """(wanted) => document.body.innerText.includes(wanted) ? Date.now() : false"""


async def start_job(stack: Stack, job_id: str) -> None:
    """A job planned into CHUNKS daily chunks, as a worker would start it."""
    common: dict[str, Any] = {"job_id": job_id, "producer": "latency-test"}
    specs = [
        ChunkSpec(index=i, start=DAY0 + timedelta(days=i), end=DAY0 + timedelta(days=i + 1))
        for i in range(CHUNKS)
    ]
    events = [
        JobSubmitted(**common, seq=1, source="sim", symbol=job_id.upper(), bar_size=BarSize.M1,
                     start=DAY0, end=DAY0 + timedelta(days=CHUNKS)),
        JobStarted(**common, seq=2, worker_id="latency-test", price_type="trades", chunks=specs),
    ]  # fmt: skip
    for event in events:
        await stack.redis.xadd(stack.names.events, encode(event))
    await wait_folded(stack.engine, job_id, 2)


async def collect_chunk(stack: Stack, job_id: str, chunk: int) -> None:
    first = int((DAY0 + timedelta(days=chunk)).timestamp())
    stamps = [first + 60 * k for k in range(10)]
    event = ChunkCollected(
        job_id=job_id, seq=3 + chunk, chunk=chunk, source="sim", symbol=job_id.upper(),
        bar_size=BarSize.M1, price_type="trades", producer="latency-test",
        bars=BarBatch(ts=stamps, open=[1.0] * 10, high=[2.0] * 10, low=[0.5] * 10,
                      close=[1.5] * 10, volume=[100.0] * 10),
    )  # fmt: skip
    await stack.redis.xadd(stack.names.events, encode(event))


async def measure(page: Page, stack: Stack, job_id: str) -> list[float]:
    """Milliseconds from each event's append to the page showing it."""
    samples = []
    gaps = random.Random(CHUNKS)
    for chunk in range(CHUNKS):
        done = chunk + 1
        wanted = f"{done} / {CHUNKS} chunks · {10 * done} bars"  # this job's own line
        emitted = time.time() * 1000
        await collect_chunk(stack, job_id, chunk)
        seen = await page.wait_for_function(SEEN_AT, arg=wanted, polling="raf", timeout=10_000)
        samples.append(float(await seen.json_value()) - emitted)
        # One event at a time (no batching flatters the figure), at uneven gaps so the samples
        # fall anywhere in the console's cycles rather than in step with them.
        await page.wait_for_timeout(gaps.uniform(100, 300))
    return samples


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "samples": len(ordered),
        "min_ms": round(ordered[0], 1),
        "median_ms": round(statistics.median(ordered), 1),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))], 1),
        "max_ms": round(ordered[-1], 1),
    }


async def test_a_chunk_shows_within_a_second(
    playwright: Playwright, console: Console, stack: Stack
) -> None:
    browser = await launch(playwright)
    page = await browser.new_page()
    await log_in(page, console)
    results: dict[str, dict[str, float]] = {}
    for where, job_id in (("job detail", "lat-detail"), ("jobs list", "lat-list")):
        await start_job(stack, job_id)
        await page.goto(
            f"{console.url}/jobs/{job_id}" if where == "job detail" else f"{console.url}/jobs"
        )
        await expect(page.get_by_text(f"0 / {CHUNKS} chunks").first).to_be_visible()
        results[where] = summary(await measure(page, stack, job_id))
    await browser.close()
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\npush latency (event appended -> shown in Chromium): {json.dumps(results)}")
    for figures in results.values():
        assert figures["p95_ms"] < 1000, results
