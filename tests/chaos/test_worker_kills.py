"""Chaos: `kill -9` of sim workers mid-job, five times; every job still ends with exact bars.

A killed worker's job is claimed by a live worker once its entry is idle past the threshold, and
resumes at its first unfinished chunk. Kills come one at a time, each 3 s after the last one's
jobs moved on again. The killed worker is restarted each time with the same
worker id, as a container restarted by its orchestrator would be.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.chaos.harness import (
    Cluster,
    ClusterConfig,
    JobHistory,
    Load,
    logged_at,
    outcome,
    running_cluster,
    spread,
    submit_load,
    verify_load,
)

pytestmark = [pytest.mark.chaos, pytest.mark.postgres, pytest.mark.timeout(240)]

LOAD = Load(jobs=20, chunks=50, latency_ms=80, prefix="WK")
CONFIG = ClusterConfig(workers=3, claim_idle_ms=2500, claim_interval_ms=250)
KILLS = 5
KILL_GAP_S = 3.0


async def test_jobs_survive_kill_9_of_workers(
    tmp_path: Path,
    chaos_database_url: str,
    figures: Callable[[str], dict[str, Any]],
    artifacts_dir: Path,
    chaos_seed: int,
) -> None:
    fig = figures("worker_kills")
    rng = random.Random(chaos_seed)
    fig.update(
        seed=chaos_seed,
        jobs=LOAD.jobs,
        chunks_per_job=LOAD.chunks,
        latency_ms=LOAD.latency_ms,
        workers=CONFIG.workers,
        claim_idle_ms=CONFIG.claim_idle_ms,
        claim_interval_ms=CONFIG.claim_interval_ms,
    )
    with outcome(fig):
        async with running_cluster(
            tmp_path, chaos_database_url, CONFIG, artifacts_dir / "logs" / "worker_kills"
        ) as cluster:
            started = time.monotonic()
            jobs = await submit_load(cluster, LOAD)
            kills: list[dict[str, Any]] = []
            fig["kills"] = kills
            for _ in range(KILLS):
                await asyncio.sleep(KILL_GAP_S)
                if kills:
                    # One kill at a time: the next waits until the last one's jobs moved on.
                    # Kills faster than the workers can take over abandoned entries would queue
                    # them, and a resume would then measure that queue, not the takeover.
                    await resumed(cluster, kills[-1], timeout=30)
                held = await cluster.running_jobs()
                busy = [
                    w for w, service in cluster.workers.items() if held.get(w) and service.alive
                ]
                victim = rng.choice(busy or sorted(cluster.workers))
                running = held.get(victim, [])
                checkpoints = {j: await cluster.checkpointed_chunks(j) for j in running}
                moment = time.time()
                await cluster.workers[victim].kill9()
                kills.append(
                    {
                        "worker": victim,
                        "at": round(moment, 3),
                        "after_s": round(time.monotonic() - started, 2),
                        "jobs_running": running,
                        "checkpoints": checkpoints,
                    }
                )
                cluster.workers[victim].start()
            fig["worker_kills"] = len(kills)

            hits = sum(1 for kill in kills if kill["jobs_running"])
            history = await verify_load(
                cluster,
                LOAD,
                jobs,
                fig,
                timeout=150,
                # Only the chunk in flight at a kill may be collected again, and each kill
                # makes one job start again, on the worker that claims it.
                max_redone_chunks=hits,
                max_extra_starts=hits,
            )
            fig["load_duration_s"] = round(time.monotonic() - started, 1)

            # When the queue of new jobs ran dry (the last first start). Abandoned commands are
            # taken over before new ones, so resumes do not wait for it (they once did: 16-24 s).
            first_starts = [
                min(logged_at(e) for e in job.of_type("job.started")) for job in history.values()
            ]
            backlog_drained_at = max(first_starts)
            resumes = []
            for kill in kills:
                kill["resume_s"] = {}
                for job_id in kill["jobs_running"]:
                    job = history.get(job_id)
                    if job is None or job.ended_before(kill["at"]):
                        continue  # its terminal event was out before the kill: nothing to resume
                    gap = job.next_progress_after(kill["at"])
                    kill["resume_s"][job_id] = None if gap is None else round(gap, 3)
                    if gap is not None:
                        resumes.append(gap)
                        kill["resumed_after_new_jobs_ran_out"] = (
                            kill["at"] + gap >= backlog_drained_at
                        )
                kill["new_jobs_ran_out_s_after_kill"] = round(backlog_drained_at - kill["at"], 3)
            fig["resume_after_kill_s"] = spread(resumes)
            # The entry must go idle past the threshold, then a worker takes it over when it next
            # starts a job or idles: at worst one whole worker cycle later (the job it has just
            # taken: reading what is stored and planning, then its chunks). Cycles last longer on
            # a loaded machine: the bound takes the longest this run measured, as the time
            # between two jobs' ends on one worker while new jobs were still waiting.
            cycles = worker_cycles(history, kills, before=backlog_drained_at)
            cycle_s = max([LOAD.chunks * LOAD.latency_ms / 1000, *cycles])
            fig["longest_worker_cycle_s"] = round(cycle_s, 3)
            bound = CONFIG.claim_idle_ms / 1000 + cycle_s + 1.5
            fig["resume_bound_s"] = round(bound, 3)
            assert resumes, "no killed job to resume: the scenario measured nothing"
            assert max(resumes) <= bound, (resumes, bound)
            assert hits >= KILLS - 1, f"the kills should hit workers running a job: {kills}"


async def resumed(cluster: Cluster, kill: dict[str, Any], timeout: float) -> None:
    """Until every job the kill interrupted has collected a chunk since (or timeout)."""
    deadline = time.monotonic() + timeout
    for job_id, before in kill["checkpoints"].items():
        while time.monotonic() < deadline:
            if await cluster.checkpointed_chunks(job_id) > before:
                break
            if (await cluster.job(job_id)).get("status") in ("succeeded", "failed", "cancelled"):
                break
            await asyncio.sleep(0.05)


def worker_cycles(
    history: dict[str, JobHistory], kills: list[dict[str, Any]], before: float
) -> list[float]:
    """Seconds between consecutive job ends on one worker, for jobs it started before `before`
    (new jobs were waiting, so it never idled) with no kill of it in between."""
    ends: dict[str, list[float]] = {}
    for job in history.values():
        for event in job.of_type("job.succeeded"):
            started = [s for s in job.of_type("job.started") if s["producer"] == event["producer"]]
            if started and logged_at(started[-1]) < before:
                ends.setdefault(event["producer"], []).append(logged_at(event))
    cycles = []
    for worker, stamps in ends.items():
        stamps.sort()
        for earlier, later in itertools.pairwise(stamps):
            killed = any(k["worker"] == worker and earlier < k["at"] < later for k in kills)
            if not killed:
                cycles.append(later - earlier)
    return cycles
