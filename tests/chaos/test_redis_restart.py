"""Chaos: Redis restarted under load (same port, same append-only file); every job still ends.

Redis stops with SIGTERM (it writes its AOF and exits), stays down a second and starts again on
the same port and data. Every client reconnects; a command whose answer was lost is retried, and the
effects stay exactly once (bars upserted, checkpoints per chunk).
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.chaos.harness import (
    ClusterConfig,
    Load,
    outcome,
    running_cluster,
    spread,
    submit_load,
    verify_load,
)

pytestmark = [pytest.mark.chaos, pytest.mark.postgres, pytest.mark.timeout(240)]

LOAD = Load(jobs=20, chunks=50, latency_ms=80, prefix="RR")
CONFIG = ClusterConfig(workers=3, claim_idle_ms=2500, claim_interval_ms=250)
RESTART_AT_S = 6.0
DOWN_S = 1.0
# SIGTERM: Redis writes its AOF and exits. CHAOS_REDIS_SIGNAL=KILL tries kill -9 instead, where
# `appendfsync everysec` may lose the last second of writes (not part of the normal run).
SIGNAL = signal.Signals[f"SIG{os.environ.get('CHAOS_REDIS_SIGNAL', 'TERM').upper()}"]


async def test_jobs_survive_a_redis_restart(
    tmp_path: Path,
    chaos_database_url: str,
    figures: Callable[[str], dict[str, Any]],
    artifacts_dir: Path,
) -> None:
    fig = figures("redis_restart")
    fig.update(
        jobs=LOAD.jobs,
        chunks_per_job=LOAD.chunks,
        latency_ms=LOAD.latency_ms,
        workers=CONFIG.workers,
        redis_signal=SIGNAL.name,
        redis_down_s=DOWN_S,
        appendfsync="everysec",
    )
    with outcome(fig):
        async with running_cluster(
            tmp_path, chaos_database_url, CONFIG, artifacts_dir / "logs" / "redis_restart"
        ) as cluster:
            started = time.monotonic()
            jobs = await submit_load(cluster, LOAD)
            await asyncio.sleep(RESTART_AT_S)
            running = await cluster.running_jobs()
            fig["jobs_running_at_stop"] = sorted(j for held in running.values() for j in held)
            port = cluster.redis_server.port
            signalled_at, exited_at, back_at = await cluster.restart_redis(SIGNAL, DOWN_S)
            assert cluster.redis_server.port == port
            fig["redis_exit_after_signal_s"] = round(exited_at - signalled_at, 3)
            fig["redis_down_s"] = round(back_at - exited_at, 3)
            fig["redis_restarts"] = 1

            history = await verify_load(
                cluster,
                LOAD,
                jobs,
                fig,
                timeout=150,
                max_redone_chunks=CONFIG.workers,
                max_extra_starts=CONFIG.workers,
            )
            fig["load_duration_s"] = round(time.monotonic() - started, 1)
            # From Redis answering again to each interrupted job's next chunk on the log.
            resumes = {}
            for job_id, job in history.items():
                if not job.started_before(exited_at) or job.ended_before(exited_at):
                    continue  # not running when Redis went away
                gap = job.next_progress_after(back_at)
                if gap is not None:
                    resumes[job_id] = round(gap, 3)
            fig["resume_after_restart_by_job_s"] = resumes
            fig["resume_after_restart_s"] = spread(resumes.values())
            assert resumes, "no job was running when Redis stopped"
