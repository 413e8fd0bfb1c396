"""Chaos: two jobs sharing their fetches, and `kill -9` of each one's worker in turn.

Two jobs ask for the same symbol and range at once, one on each worker: for every chunk one
leads (fetches) and the other follows (takes its bars). Killing the worker of either must not
leave the other waiting for a fetch nobody makes: a dead leader's lease lapses, the follower
fetches, and the killed job is resumed by its restarted worker. Both end with exact bars.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.chaos.harness import Cluster, ClusterConfig, Load, histories, outcome, running_cluster

pytestmark = [pytest.mark.chaos, pytest.mark.postgres, pytest.mark.timeout(180)]

LEASE_MS = 1500
CONFIG = ClusterConfig(
    workers=2,
    claim_idle_ms=2500,
    claim_interval_ms=250,
    extra_env={"BACKFILL_FETCH_LEASE_MS": str(LEASE_MS)},
)
LOAD = Load(jobs=1, chunks=40, latency_ms=300, prefix="SF")


async def _running_on_both(
    cluster: Cluster, jobs: list[str], timeout: float = 30
) -> dict[str, str]:
    """job id -> the worker running it, once each job runs on its own worker."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        held = await cluster.running_jobs()
        where = {job: worker for worker, running in held.items() for job in running}
        if set(where) == set(jobs) and len(set(where.values())) == 2:
            return where
        await asyncio.sleep(0.1)
    raise AssertionError(f"the two jobs did not both run: {await cluster.diagnose()}")


async def test_killing_the_worker_of_either_sharing_job_loses_nothing(
    tmp_path: Path,
    chaos_database_url: str,
    figures: Callable[[str], dict[str, Any]],
    artifacts_dir: Path,
) -> None:
    fig = figures("shared_fetch_kills")
    fig.update(chunks=LOAD.chunks, latency_ms=LOAD.latency_ms, lease_ms=LEASE_MS)
    with outcome(fig):
        async with running_cluster(
            tmp_path, chaos_database_url, CONFIG, artifacts_dir / "logs" / "shared_fetch_kills"
        ) as cluster:
            symbol = LOAD.symbols()[0]
            jobs = [await cluster.submit(**LOAD.request(symbol)) for _ in range(2)]
            kills = []
            for victim_job in jobs:  # the first job's worker, then the second's
                where = await _running_on_both(cluster, jobs)
                await cluster.wait_checkpointed(
                    victim_job, await cluster.checkpointed_chunks(victim_job) + 3, timeout=30
                )
                worker = where[victim_job]
                done_at_kill = await cluster.checkpointed_chunks(victim_job)
                await cluster.workers[worker].kill9()
                killed_at = time.monotonic()
                cluster.workers[worker].start()
                # Resumed (taken over once idle past the threshold) before the next kill.
                await cluster.wait_checkpointed(victim_job, done_at_kill + 2, timeout=30)
                kills.append(
                    {
                        "job": victim_job,
                        "worker": worker,
                        "chunks_done_at_kill": done_at_kill,
                        "moving_again_after_s": round(time.monotonic() - killed_at, 2),
                    }
                )
            fig["kills"] = kills

            statuses = await cluster.wait_terminal(jobs, timeout=120)
            assert set(statuses.values()) == {"succeeded"}, statuses
            stamps = await cluster.bar_stamps(symbol)
            assert len(stamps) == len(set(stamps)) == LOAD.bars_per_job
            history = await histories(cluster, jobs)
            own, shared = Counter[int](), Counter[int]()
            for job in history.values():
                collected = {e["data"]["chunk"]: e["data"] for e in job.chunk_events()}
                assert sorted(collected) == list(range(LOAD.chunks)), job.job_id
                for chunk, data in collected.items():
                    (shared if data["shared_from"] else own)[chunk] += 1
            fig["chunks_fetched_by_their_job"] = sum(own.values())
            fig["chunks_taken_from_the_other_job"] = sum(shared.values())
            # Sharing happened all along, kills or not: most chunks were fetched once.
            assert sum(shared.values()) >= LOAD.chunks // 2, fig
            waits = [
                e["data"]
                for job in history.values()
                for e in job.of_type("job.waiting")
                if e["data"]["outcome"] == "in_flight"
            ]
            fig["in_flight_waits"] = len(waits)
            assert waits
            pending: Any = await cluster.redis.xpending(
                cluster.command_stream, cluster.command_group
            )
            assert pending["pending"] == 0, await cluster.held_entries()
            fig["liveness"] = await cluster.assert_alive()
