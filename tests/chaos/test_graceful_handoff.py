"""Chaos: SIGTERM a worker mid-job; it exits quickly and another worker continues at once.

A stopping worker hands its job back instead of leaving it to the idle threshold: the next
worker continues at the first unfinished chunk well before `claim_idle_ms` would have passed.
Done twice: the worker stopped first is restarted and takes the job back at the second stop.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.chaos.harness import (
    ClusterConfig,
    Load,
    histories,
    logged_at,
    outcome,
    running_cluster,
    spread,
)

pytestmark = [pytest.mark.chaos, pytest.mark.postgres, pytest.mark.timeout(120)]

# A long idle threshold, so a handoff that waited for it could not pass for a quick one.
CONFIG = ClusterConfig(workers=2, claim_idle_ms=6000, claim_interval_ms=250)
# Long enough (12 s of chunks) to outlast both handoffs and a worker restart on a slow machine.
LOAD = Load(jobs=1, chunks=120, latency_ms=100, prefix="HO")
HANDOFFS = 2
EXIT_BOUND_S = 10.0
GAP_BOUND_S = CONFIG.claim_idle_ms / 1000 / 2


async def test_sigterm_hands_the_job_to_another_worker_at_once(
    tmp_path: Path,
    chaos_database_url: str,
    figures: Callable[[str], dict[str, Any]],
    artifacts_dir: Path,
) -> None:
    fig = figures("graceful_handoff")
    fig.update(
        jobs=LOAD.jobs,
        chunks_per_job=LOAD.chunks,
        latency_ms=LOAD.latency_ms,
        workers=CONFIG.workers,
        claim_idle_ms=CONFIG.claim_idle_ms,
    )
    with outcome(fig):
        async with running_cluster(
            tmp_path, chaos_database_url, CONFIG, artifacts_dir / "logs" / "graceful_handoff"
        ) as cluster:
            symbol = LOAD.symbols()[0]
            job_id = await cluster.submit(**LOAD.request(symbol))
            handoffs: list[dict[str, Any]] = []
            fig["handoffs"] = handoffs
            for _ in range(HANDOFFS):
                # Counted from the workers' checkpoints, not the projections: on a loaded machine
                # the read model can lag by seconds, long enough for the job to have ended.
                # And from now: a restarted worker's start-up is a second or more of progress.
                now = await cluster.checkpointed_chunks(job_id)
                done = await cluster.wait_checkpointed(job_id, now + 8, timeout=30)
                assert done < LOAD.chunks - 8, f"the job nearly ended ({done} chunks): lengthen it"
                running = await cluster.running_jobs()
                holders = [w for w, jobs in running.items() if job_id in jobs]
                assert len(holders) == 1, running
                victim = cluster.workers[holders[0]]
                stopped_at = time.time()
                victim.signal(signal.SIGTERM)
                code = await victim.wait_exit(15)
                exited_after = time.time() - stopped_at
                handoffs.append(
                    {
                        "worker": victim.name,
                        "at": round(stopped_at, 3),
                        "chunks_done_before": done,
                        "exit_code": code,
                        "exit_after_s": round(exited_after, 3),
                    }
                )
                assert code is not None, f"{victim.name} still running 15 s after SIGTERM"
                victim.start()  # back as an idle worker, ready to take the job at the next stop
                await cluster.wait_worker_idle(victim.name)

            statuses = await cluster.wait_terminal([job_id], timeout=60)
            fig["jobs_succeeded"] = int(statuses[job_id] == "succeeded")
            job = (await histories(cluster, [job_id]))[job_id]
            for handoff in handoffs:
                before = [
                    e for e in job.chunk_events()
                    if e["producer"] == handoff["worker"] and logged_at(e) <= handoff["at"] + 1
                ]  # fmt: skip
                after = [
                    e for e in job.chunk_events()
                    if e["producer"] != handoff["worker"] and logged_at(e) > handoff["at"]
                ]  # fmt: skip
                handoff["next_chunk_by"] = after[0]["producer"] if after else None
                handoff["gap_s"] = round(logged_at(after[0]) - handoff["at"], 3) if after else None
                handoff["chunk_to_chunk_s"] = (
                    round(logged_at(after[0]) - logged_at(before[-1]), 3)
                    if after and before
                    else None
                )
            fig["handed_back_events"] = len(job.of_type("job.handed_back"))
            fig["redone_chunks"] = job.redone_chunks()
            fig["handoff_gap_s"] = spread(h["gap_s"] for h in handoffs if h["gap_s"] is not None)[
                "worst"
            ]
            fig["exit_after_sigterm_s"] = max(h["exit_after_s"] for h in handoffs)
            fig["handoff_gaps_s"] = spread(h["gap_s"] for h in handoffs if h["gap_s"] is not None)
            by_symbol = await cluster.bars_by_symbol()
            fig["bars_expected"] = LOAD.bars_per_job
            fig["bars_stored"] = by_symbol.get(symbol, 0)
            fig["duplicates"] = len(await cluster.duplicate_bars())

            assert statuses[job_id] == "succeeded", await cluster.job(job_id)
            for handoff in handoffs:
                assert handoff["exit_after_s"] <= EXIT_BOUND_S, handoff
                assert handoff["next_chunk_by"] not in (None, handoff["worker"]), handoff
                assert handoff["gap_s"] < GAP_BOUND_S, (
                    f"the next chunk came {handoff['gap_s']} s after SIGTERM: the job waited for "
                    f"the idle threshold ({CONFIG.claim_idle_ms} ms) instead of being handed back"
                )
            assert fig["bars_stored"] == fig["bars_expected"], fig
            assert fig["duplicates"] == 0
            assert fig["redone_chunks"] == 0, "a handed-back job must not redo collected chunks"
