"""Coverage per series, end to end: sim data with holes punched in it, and a real calendar."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from backfill_bus import Names
from backfill_cli.main import main
from backfill_contracts import (
    BarBatch,
    BarSize,
    ChunkCollected,
    ChunkSpec,
    JobEvent,
    JobStarted,
    JobSubmitted,
    JobSucceeded,
)
from tests.support.api_server import bearer_token, served_api
from tests.support.bars import delete_bars
from tests.support.events import append, wait_folded
from tests.support.stack import running_stack


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def one_chunk_job(
    job_id: str,
    source: str,
    symbol: str,
    bar_size: BarSize,
    start: str,
    end: str,
    stamps: list[int],
) -> list[JobEvent]:
    """A finished job of one chunk over [start, end) whose source answered with `stamps`."""
    common: dict[str, Any] = {"job_id": job_id, "producer": "test"}
    lo, hi = _at(start), _at(end)
    now = datetime.now(UTC)
    batch = BarBatch(
        ts=stamps,
        open=[1.0] * len(stamps),
        high=[2.0] * len(stamps),
        low=[0.5] * len(stamps),
        close=[1.5] * len(stamps),
        volume=[10.0] * len(stamps),
    )
    return [
        JobSubmitted(**common, seq=1, ts=now, source=source, symbol=symbol, bar_size=bar_size,
                     start=lo, end=hi),
        JobStarted(**common, seq=2, ts=now, worker_id="w-test", price_type="trades",
                   chunks=[ChunkSpec(index=0, start=lo, end=hi)]),
        ChunkCollected(**common, seq=3, ts=now, chunk=0, source=source, symbol=symbol,
                       bar_size=bar_size, price_type="trades", bars=batch),
        JobSucceeded(**common, seq=4, ts=now, chunks=1, bars=len(stamps)),
    ]  # fmt: skip


async def test_sim_gaps_are_found_and_each_says_why(
    redis_url: str, database_url: str, namespace: str
) -> None:
    async with running_stack(redis_url, database_url, namespace, with_worker=False) as stack:
        # One try per chunk: the sim's transient fault on the second chunk fails job B.
        await stack.start_worker(f"{namespace}w", max_chunk_tries=1)
        week = {"source": "sim", "symbol": "HOLES", "bar_size": "1m"}
        a = await stack.submit(**week, start="2024-01-08", end="2024-01-13")
        assert (await stack.wait_job(a))["status"] == "succeeded"
        b = await stack.submit(**week, start="2024-01-15", end="2024-01-20",
                               options={"fail_every": 2})  # fmt: skip
        assert (await stack.wait_job(b))["status"] == "failed"
        # The source answered nothing for the 22nd (the sim never does: a job of the log).
        names = Names(namespace)
        await append(stack.redis, names, one_chunk_job(
            "c-empty", "sim", "HOLES", BarSize.M1, "2024-01-22", "2024-01-23", []
        ))  # fmt: skip
        await wait_folded(stack.engine, "c-empty", 4)
        # Punch a hole: ten minutes of the 9th, inside job A's collected chunk.
        async with stack.engine.begin() as conn:
            await conn.execute(
                delete_bars("HOLES", _at("2024-01-09T15:00:00"), _at("2024-01-09T15:10:00"))
            )

        response = await stack.api.get(
            "/api/v1/coverage",
            params={**week, "start": "2024-01-04", "end": "2024-01-24"},
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["calendar"] == "sim"
        assert body["first"] == "2024-01-08T14:30:00Z"
        assert body["last"] == "2024-01-15T20:59:00Z"
        assert body["count"] == 6 * 390 - 10
        assert body["expected"] == 14 * 390
        assert body["held"] == 6 * 390 - 10
        assert [(g["start"], g["end"], g["bars"], g["kind"]) for g in body["gaps"]] == [
            ("2024-01-04T14:30:00Z", "2024-01-05T21:00:00Z", 780, "never_requested"),
            ("2024-01-09T15:00:00Z", "2024-01-09T15:10:00Z", 10, "partial"),
            ("2024-01-16T14:30:00Z", "2024-01-19T21:00:00Z", 4 * 390, "failed"),
            ("2024-01-22T14:30:00Z", "2024-01-22T21:00:00Z", 390, "no_data"),
            ("2024-01-23T14:30:00Z", "2024-01-23T21:00:00Z", 390, "never_requested"),
        ]

        # Without a range: from the first bar to the last, per session on request.
        held = (await stack.api.get("/api/v1/coverage", params={**week, "days": "true"})).json()
        assert [g["kind"] for g in held["gaps"]] == ["partial"]
        assert held["expected"] == 6 * 390
        assert held["days"][1] == {"day": "2024-01-09", "expected": 390, "held": 380}

        refused = await stack.api.get("/api/v1/coverage", params={**week, "calendar": "XNOPE"})
        assert refused.status_code == 422
        assert "XNOPE" in refused.text
        huge = {**week, "bar_size": "1s", "start": "2024-01-01", "end": "2025-01-01"}
        too_large = await stack.api.get("/api/v1/coverage", params=huge)
        assert too_large.status_code == 422
        assert "ask for a shorter one" in too_large.text


async def test_yahoo_daily_bars_against_the_new_york_calendar(
    redis_url: str, database_url: str, namespace: str
) -> None:
    async with running_stack(redis_url, database_url, namespace, with_worker=False) as stack:
        # Yahoo stamps daily bars at 00:00 New York (04:00 UTC in summer). The 5th is missing;
        # the 4th (Independence Day) is no gap, and the 3rd (a half day) is a day like others.
        stamps = [
            int(_at(f"2024-07-{day:02d}T04:00:00").timestamp()) for day in (1, 2, 3, 8, 9, 10)
        ]
        await append(stack.redis, Names(namespace), one_chunk_job(
            "y-daily", "yahoo", "NYC", BarSize.D1, "2024-07-01", "2024-07-11", stamps
        ))  # fmt: skip
        await wait_folded(stack.engine, "y-daily", 4)
        body = (
            await stack.api.get(
                "/api/v1/coverage",
                params={"source": "yahoo", "symbol": "NYC", "bar_size": "1d", "days": "true"},
            )
        ).json()
        assert body["calendar"] == "XNYS"
        assert body["count"] == 6
        assert body["expected"] == 7
        assert [(g["start"], g["bars"], g["kind"]) for g in body["gaps"]] == [
            ("2024-07-05T00:00:00Z", 1, "partial")
        ]
        sessions = [_at("2024-07-01") + timedelta(days=n) for n in (0, 1, 2, 4, 7, 8, 9)]
        assert [d["day"] for d in body["days"]] == [s.date().isoformat() for s in sessions]


async def test_the_cli_shows_coverage_and_submits_a_fill(
    redis_url: str,
    database_url: str,
    namespace: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with (
        running_stack(redis_url, database_url, namespace) as stack,
        served_api(stack) as api_url,
    ):
        monkeypatch.setenv("BACKFILL_API_TOKEN", bearer_token(stack) or "")
        series = ["--source", "sim", "--bar-size", "1d", "--api-url", api_url]
        first = await stack.submit(
            source="sim", symbol="CLI", bar_size="1d", start="2024-01-01", end="2024-01-08"
        )
        await stack.wait_job(first)
        capsys.readouterr()
        argv = ["coverage", "CLI", *series, "--start", "2024-01-01", "--end", "2024-01-13"]
        assert await asyncio.to_thread(main, argv) == 0
        out = capsys.readouterr().out
        assert "stored    5 bars, 2024-01-01T00:00:00Z to 2024-01-05T00:00:00Z" in out
        assert "5 of 10 expected bars (50.0%)" in out
        assert "2024-01-08T00:00:00Z  2024-01-13T00:00:00Z     5  never requested" in out

        fill = ["submit", "CLI", *series, "--start", "2024-01-01", "--end", "2024-01-13"]
        assert await asyncio.to_thread(main, [*fill, "--mode", "fill_gaps"]) == 0
        assert await asyncio.to_thread(main, argv) == 0
        out = capsys.readouterr().out
        assert "10 of 10 expected bars (100.0%)" in out
        assert "gaps      none" in out
