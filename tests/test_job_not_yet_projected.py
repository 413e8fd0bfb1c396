"""A job asked about right after its POST, before the projector folded it, is queued, not 404.

The projector is held still here (the test folds the log itself), so the gap that is a few
milliseconds in a running stack lasts as long as the test needs.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from backfill_bus import ensure_events_group, queued_key
from tests.support.stack import Stack, running_stack

JOB = {
    "source": "sim",
    "symbol": "EARLY",
    "bar_size": "1d",
    "start": "2024-01-01",
    "end": "2024-02-01",
    "options": {"latency_ms": 5},
}


@contextlib.asynccontextmanager
async def _projector_held(
    redis_url: str, database_url: str, namespace: str
) -> AsyncIterator[Stack]:
    """The API and the log, no worker, and a projector that folds only when told to."""
    async with running_stack(
        redis_url, database_url, namespace, with_worker=False, with_projector=False
    ) as stack:
        await ensure_events_group(stack.redis, stack.names)
        yield stack


async def _fold_the_log(stack: Stack) -> int:
    """What the projector would do next: its first step reads its pending entries (none)."""
    return sum([await stack.projector.step() for _ in range(3)])


async def test_a_job_not_yet_projected_reads_as_queued_as_it_will_once_projected(
    redis_url: str, database_url: str, namespace: str
) -> None:
    async with _projector_held(redis_url, database_url, namespace) as stack:
        response = await stack.api.post(
            "/api/v1/jobs", json=JOB, headers={"X-Correlation-ID": "req-early-1"}
        )
        assert response.status_code == 202, response.text
        job_id = response.json()["job_id"]

        early = await stack.api.get(f"/api/v1/jobs/{job_id}")
        assert early.status_code == 200, early.text
        assert early.json()["status"] == "queued"
        assert (await stack.api.get(f"/api/v1/jobs/{job_id}/events")).json() == []
        assert (await stack.api.get(f"/api/v1/jobs/{job_id}/chunks")).json() == []

        assert await stack.redis.exists(queued_key(stack.names, job_id)) == 1
        assert await _fold_the_log(stack) == 1
        # Folded: the tables answer from now on (a cleanup later must make it a 404 again).
        assert await stack.redis.exists(queued_key(stack.names, job_id)) == 0
        projected = await stack.api.get(f"/api/v1/jobs/{job_id}")
        assert projected.status_code == 200
        # The early answer is exactly what the projection says once it has the job.
        assert early.json() == projected.json()
        assert projected.json()["correlation_id"] == "req-early-1"


async def test_a_job_not_yet_projected_can_be_cancelled_and_unknown_ids_still_404(
    redis_url: str, database_url: str, namespace: str
) -> None:
    async with _projector_held(redis_url, database_url, namespace) as stack:
        job_id = await stack.submit(**JOB)
        cancelled = await stack.api.post(f"/api/v1/jobs/{job_id}/cancel")
        assert cancelled.status_code == 202, cancelled.text
        retry = await stack.api.post(f"/api/v1/jobs/{job_id}/retry")
        assert retry.status_code == 409  # queued as far as anyone knows: nothing to retry yet

        missing = await stack.api.get("/api/v1/jobs/no-such-job")
        assert missing.status_code == 404
        assert missing.json()["detail"] == "no job no-such-job"

        assert await _fold_the_log(stack) == 2  # submitted, cancelled
        job = (await stack.api.get(f"/api/v1/jobs/{job_id}")).json()
        assert job["status"] == "cancelled"
