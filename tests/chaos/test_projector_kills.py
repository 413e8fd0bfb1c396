"""Chaos: `kill -9` of the projector twice under load; the tables still end exact.

The projector commits rows and its stream position in one transaction, so a restarted projector
re-reads what it had read but not acked, skips what it had committed, and folds the rest.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.chaos.harness import (
    Cluster,
    ClusterConfig,
    Load,
    entry_ms,
    outcome,
    running_cluster,
    spread,
    submit_load,
    text_of,
    verify_load,
)

pytestmark = [pytest.mark.chaos, pytest.mark.postgres, pytest.mark.timeout(240)]

LOAD = Load(jobs=20, chunks=50, latency_ms=80, prefix="PK")
CONFIG = ClusterConfig(workers=3, claim_idle_ms=2500, claim_interval_ms=250)
KILL_AT_S = (4.0, 12.0)  # seconds into the load
DOWN_S = 1.0  # how long the projector stays dead before its restart


async def _catch_up(cluster: Cluster, target: str, timeout: float = 60) -> float | None:
    """Seconds until the projector's committed position reaches `target`; None if it does not."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        position = await cluster.projector_position()
        if position is not None and entry_ms(position) >= entry_ms(target):
            return time.monotonic() - started
        await asyncio.sleep(0.05)
    return None


async def test_jobs_survive_kill_9_of_the_projector(
    tmp_path: Path,
    chaos_database_url: str,
    figures: Callable[[str], dict[str, Any]],
    artifacts_dir: Path,
) -> None:
    fig = figures("projector_kills")
    fig.update(
        jobs=LOAD.jobs,
        chunks_per_job=LOAD.chunks,
        latency_ms=LOAD.latency_ms,
        workers=CONFIG.workers,
        projector_down_s=DOWN_S,
    )
    with outcome(fig):
        async with running_cluster(
            tmp_path, chaos_database_url, CONFIG, artifacts_dir / "logs" / "projector_kills"
        ) as cluster:
            started = time.monotonic()
            jobs = await submit_load(cluster, LOAD)
            kills: list[dict[str, Any]] = []
            fig["kills"] = kills
            for kill_at in KILL_AT_S:
                await asyncio.sleep(max(0.0, kill_at - (time.monotonic() - started)))
                position = await cluster.projector_position()
                await cluster.projector.kill9()
                await asyncio.sleep(DOWN_S)
                info: Any = await cluster.redis.xinfo_stream(cluster.names.events)
                target = text_of(info["last-generated-id"])
                cluster.projector.start()
                caught_up = await _catch_up(cluster, target)
                kills.append(
                    {
                        "after_s": round(kill_at, 1),
                        "position_at_kill": position,
                        "log_end_at_restart": target,
                        "catch_up_s": None if caught_up is None else round(caught_up, 3),
                    }
                )
            fig["projector_kills"] = len(kills)
            fig["projector_catch_up_s"] = spread(
                k["catch_up_s"] for k in kills if k["catch_up_s"] is not None
            )

            # The workers were never touched: no chunk may have been collected twice.
            await verify_load(
                cluster, LOAD, jobs, fig, timeout=150, max_redone_chunks=0, max_extra_starts=0
            )
            fig["load_duration_s"] = round(time.monotonic() - started, 1)
            assert all(k["catch_up_s"] is not None for k in kills), kills
