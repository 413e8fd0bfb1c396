"""Job detail: parameters, chunk grid, timeline, chart data, errors in words, downloads."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

import pyarrow.parquet as pq
from nicegui import ui
from nicegui.testing import User

from backfill_contracts import JobWaiting, Outcome
from backfill_ui.downloads import csv_path, parquet_path
from services.ui.tests.console import eventually, log_in, new_user, texts
from tests.support.events import append, job_life, wait_folded
from tests.support.stack import Stack

# Five weekdays of minute bars; every third chunk fails once and is retried.
WEEK = {
    "source": "sim",
    "symbol": "DETAIL",
    "bar_size": "1m",
    "start": "2024-01-01",
    "end": "2024-01-06",
    "options": {"fail_every": 3},
}


def chart_options(user: User, marker: str) -> dict[str, Any]:
    with user:
        element = user.find(marker=marker).elements.pop()
        assert isinstance(element, ui.echart)
        return element.options


async def test_a_finished_job_in_detail(user: User, stack: Stack) -> None:
    job_id = await stack.submit(**WEEK)
    assert (await stack.wait_job(job_id))["status"] == "succeeded"
    api_bars = (
        await stack.api.get(
            "/api/v1/bars",
            params={"source": "sim", "symbol": "DETAIL", "bar_size": "1m", "format": "csv"},
        )
    ).text
    await log_in(user)
    await user.open(f"/jobs/{job_id}")
    await user.should_see(marker="chunk-grid", retries=40)
    await eventually(lambda: _contains(texts(user, "chart-note"), "1,950 bars"), what="chart")
    assert texts(user, "chart-note") == ["1,950 bars, drawn as 975 candles of 2 bars each"]
    assert texts(user, "param-symbol") == ["DETAIL"]
    assert texts(user, "param-options") == ['{"fail_every": 3, "latency_ms": 0}']
    assert texts(user, "progress") == ["5 / 5 chunks · 1,950 bars · 100 %"]

    grid = chart_options(user, "chunk-grid")
    counts = {series["name"]: len(series["data"]) for series in grid["series"]}
    assert counts["done (5)"] == 5
    assert counts["failed (0)"] == counts["retrying (0)"] == 0
    candles = chart_options(user, "chart")["series"]
    assert candles[0]["type"] == "candlestick"
    assert len(candles[0]["data"]) == 975
    assert candles[1]["type"] == "bar"
    assert len(candles[1]["data"]) == 975

    timeline = texts(user, "timeline")
    assert "Submitted" in timeline
    assert "Chunk 0: 390 bars" in timeline
    assert "Succeeded: 5 chunk(s), 1950 bars" in timeline
    assert any(
        line.startswith("Chunk 2 failed (will retry): the source answered with an error:")
        for line in timeline
    ), timeline

    # Downloads: the bytes hold the bars, the same as the API's CSV.
    response = await user.http_client.get(csv_path(job_id))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "sim-DETAIL-1m-20240101-20240106.csv" in response.headers["content-disposition"]
    assert response.text == api_bars
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 1950
    parquet = await user.http_client.get(parquet_path(job_id))
    assert parquet.status_code == 200
    table = pq.read_table(io.BytesIO(parquet.content))
    assert table.num_rows == 1950
    # The API's canonical columns, adj_close (Yahoo only) included.
    assert table.column_names == ["ts", "open", "high", "low", "close", "volume", "adj_close"]
    first = table.slice(0, 1).to_pylist()[0]
    assert first["ts"].isoformat() == rows[0]["ts"]
    assert first["close"] == float(rows[0]["close"])
    assert first["volume"] == float(rows[0]["volume"])

    # Without a login, no bytes.
    stranger = new_user()
    assert (await stranger.http_client.get(csv_path(job_id))).status_code == 401
    assert (await stranger.http_client.get(parquet_path(job_id))).status_code == 401


async def test_a_failure_is_told_in_plain_words(user: User, stack: Stack) -> None:
    job_id = await stack.submit(**{**WEEK, "symbol": "INVALID"})
    assert (await stack.wait_job(job_id))["status"] == "failed"
    await log_in(user)
    await user.open(f"/jobs/{job_id}")
    await user.should_see(marker="status-failed", retries=20)
    assert texts(user, "job-error") == [
        "Why: the source does not know this symbol: "
        "unknown symbol 'INVALID': the sim source has no such symbol"
    ]
    await user.should_see(marker="retry-button")
    await user.open("/jobs/no-such-job")
    await user.should_see("There is no job no-such-job.")


async def test_the_detail_page_follows_a_running_job(user: User, stack: Stack) -> None:
    job_id = await stack.submit(**{**WEEK, "symbol": "FOLLOW", "options": {"latency_ms": 200}})
    await log_in(user)
    await user.open(f"/jobs/{job_id}")
    seen: set[str] = set()

    def done() -> None:
        text = texts(user, "progress")[0]
        seen.add(text)
        assert text == "5 / 5 chunks · 1,950 bars · 100 %", text

    await eventually(done, within=30, what="the page at 100 %")
    assert len(seen) >= 3, seen
    await eventually(
        lambda: _contains(texts(user, "chart-note"), "1,950 bars"), what="chart redrawn at the end"
    )


async def test_a_job_opened_before_it_is_projected_appears_when_it_is(
    user: User, stack: Stack
) -> None:
    # The API has put the submission on the log; the projector has not folded it yet.
    await stack.redis.set(stack.names.job_key("early-1", "submitted"), b"1")
    await log_in(user)
    await user.open("/jobs/early-1")
    await user.should_see("Job early-1 was submitted: waiting for it to reach the read model…")
    life = job_life("early-1", datetime.now(UTC), "succeeded", chunks=2)
    await append(stack.redis, stack.names, life.events)
    await eventually(
        lambda: _contains(texts(user, "progress"), "2 / 2 chunks"), what="the job, once folded"
    )
    await user.should_not_see(marker="no-job")


def _contains(found: list[str], text: str) -> None:
    assert any(text in item for item in found), found


async def test_a_job_waiting_on_its_source_says_so(user: User, stack: Stack) -> None:
    life = job_life("waits-1", datetime.now(UTC), "running", chunks=3)
    life.events = life.events[:3]  # submitted, started, chunk 0 collected
    waiting = JobWaiting(
        job_id="waits-1",
        seq=4,
        chunk=1,
        outcome=Outcome.PACING,
        message="IB allows 60 requests per 10 minutes: next slot in 42 s",
        producer="test",
    )
    await append(stack.redis, stack.names, [*life.events, waiting])
    await wait_folded(stack.engine, "waits-1", 4)
    await log_in(user)
    await user.open("/jobs/waits-1")
    await user.should_see(marker="chunk-grid", retries=40)
    await eventually(
        lambda: _contains(texts(user, "timeline"), "Chunk 1 waits:"), what="the timeline"
    )
    assert texts(user, "job-notice") == [
        "waiting: IB allows 60 requests per 10 minutes: next slot in 42 s"
    ]
    grid = chart_options(user, "chunk-grid")
    counts = {series["name"]: len(series["data"]) for series in grid["series"]}
    assert counts["waiting for the source (1)"] == 1
    assert counts["done (1)"] == 1
    assert counts["not yet collected (1)"] == 1
    _contains(
        texts(user, "chunk-problems"),
        "Chunk 1 (2024-01-02): waiting for the source: the source's pacing rules made it wait",
    )
    await user.open("/jobs")
    await user.should_see("waiting: IB allows 60 requests per 10 minutes: next slot in 42 s")
