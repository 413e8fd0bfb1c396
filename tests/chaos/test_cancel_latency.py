"""Chaos: cancelling a running job stops it within a second, even mid-request.

Each job's chunks take 1.5 s (sim latency), longer than the bound, so a cancel that lands in the
middle of a request must interrupt it rather than wait for the chunk to end.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from tests.chaos.harness import (
    ClusterConfig,
    logged_at,
    outcome,
    running_cluster,
    spread,
    ts_of,
    weekdays_end,
)

pytestmark = [pytest.mark.chaos, pytest.mark.postgres, pytest.mark.timeout(120)]

CONFIG = ClusterConfig(workers=3, claim_idle_ms=2500, claim_interval_ms=250)
LATENCY_MS = 1500
CHUNKS = 20
JOBS = 3
BOUND_S = 1.0


async def test_a_cancel_stops_a_running_job_within_a_second(
    tmp_path: Path,
    chaos_database_url: str,
    figures: Callable[[str], dict[str, Any]],
    artifacts_dir: Path,
    chaos_seed: int,
) -> None:
    fig = figures("cancel_latency")
    rng = random.Random(chaos_seed)
    fig.update(seed=chaos_seed, cancelled_jobs=JOBS, latency_ms=LATENCY_MS, chunks_per_job=CHUNKS)
    with outcome(fig):
        async with running_cluster(
            tmp_path, chaos_database_url, CONFIG, artifacts_dir / "logs" / "cancel_latency"
        ) as cluster:
            start = date(2024, 1, 1)
            request = {
                "source": "sim",
                "bar_size": "1m",
                "start": start.isoformat(),
                "end": weekdays_end(start, CHUNKS).isoformat(),
                "options": {"latency_ms": LATENCY_MS},
            }
            job_ids = [await cluster.submit(**request, symbol=f"CX{n}") for n in range(JOBS)]
            cancels: list[dict[str, Any]] = []
            fig["cancels"] = cancels
            for job_id in job_ids:
                await cluster.wait_chunks_done(job_id, 1, timeout=30)
                # Land the cancel anywhere inside a chunk's request.
                await asyncio.sleep(rng.uniform(0, LATENCY_MS / 1000))
                posted = time.time()
                response = await cluster.http.post(f"/api/v1/jobs/{job_id}/cancel")
                answered = time.time()
                assert response.status_code == 202, response.text
                assert response.json()["status"] == "cancelling", response.json()
                seen = await cluster.wait_status(job_id, {"cancelled", "succeeded", "failed"}, 10)
                job = await cluster.job(job_id)
                events = await cluster.events(job_id)
                cancelled = [e for e in events if e["type"] == "job.cancelled"]
                event_at = ts_of(cancelled[-1]["ts"]) if cancelled else None
                logged = logged_at(cancelled[-1]) if cancelled else None
                after = [
                    e["type"]
                    for e in events
                    if event_at is not None
                    and ts_of(e["ts"]) > event_at
                    and e["type"].startswith(("chunk.", "job."))
                ]
                cancels.append(
                    {
                        "job_id": job_id,
                        "status": job["status"],
                        "chunks_done": job["progress"]["chunks_done"],
                        "post_s": round(answered - posted, 3),
                        "to_event_s": None if event_at is None else round(event_at - posted, 3),
                        "to_status_s": round(seen - posted, 3),
                        "to_log_s": None if logged is None else round(logged - posted, 3),
                        "events_after_cancel": after,
                    }
                )
            fig["cancel_to_event_s"] = spread(
                c["to_event_s"] for c in cancels if c["to_event_s"] is not None
            )
            fig["cancel_to_status_s"] = spread(c["to_status_s"] for c in cancels)
            for cancel in cancels:
                assert cancel["status"] == "cancelled", cancel
                assert cancel["to_event_s"] is not None, cancel
                assert cancel["to_event_s"] < BOUND_S, cancel
                assert cancel["to_status_s"] < BOUND_S, cancel
                assert cancel["events_after_cancel"] == [], cancel
                assert 1 <= cancel["chunks_done"] < CHUNKS, cancel

            # The workers let go of the cancelled jobs: every command acked, every worker idle.
            deadline = time.monotonic() + 10
            pending: Any = {}
            while time.monotonic() < deadline:
                pending = await cluster.redis.xpending(
                    cluster.command_stream, cluster.command_group
                )
                if pending["pending"] == 0:
                    break
                await asyncio.sleep(0.1)
            assert pending["pending"] == 0, await cluster.held_entries()
            fig["liveness"] = await cluster.assert_alive()
