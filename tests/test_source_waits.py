"""A source waiting on its upstream (a pacing slot, a gateway) without failing the job.

The source reports the wait with `backfill_worker.waiting`; the job shows it (a `job.waiting`
event, the chunk in state "waiting", the job's note), no try is used up, the request timeout
stops while it lasts, and a cancel still interrupts it at once.
"""

from __future__ import annotations

import asyncio
import time

from backfill_contracts import BarBatch, CollectBars, Outcome
from backfill_sim import SimSource
from backfill_worker import FetchRequest, Plan, waiting
from tests.support.stack import running_stack, wait_until

JOB = {"source": "sim", "symbol": "AAPL", "bar_size": "1d", "start": "2024-01-01"}


class WaitingSim(SimSource):
    """The sim, with a scripted wait before each of its first `waits` fetches."""

    def __init__(self, wait_s: float, waits: int = 1, while_planning: bool = False) -> None:
        self.wait_s = wait_s
        self.waits = waits
        self.while_planning = while_planning

    async def plan(self, job: CollectBars) -> Plan:
        if self.while_planning:
            async with waiting(Outcome.GATEWAY_DOWN, "waiting for the gateway", None):
                await asyncio.sleep(self.wait_s)
        return await super().plan(job)

    async def fetch(self, request: FetchRequest) -> BarBatch:
        if self.waits > 0:
            self.waits -= 1
            until = time.time() + self.wait_s
            message = f"waiting for pacing, next slot in {self.wait_s:.0f} s"
            async with waiting(Outcome.PACING, message, until):
                await asyncio.sleep(self.wait_s)
        return await super().fetch(request)


async def test_a_wait_longer_than_the_request_timeout_is_shown_and_not_a_failure(
    redis_url: str, database_url: str, namespace: str
) -> None:
    async with running_stack(redis_url, database_url, namespace, with_worker=False) as stack:
        await stack.start_worker("w", source=WaitingSim(wait_s=1.5), request_timeout_s=0.5)
        job_id = await stack.submit(**JOB, end="2024-01-10")

        async def shows_the_wait() -> dict[str, object] | None:
            job = (await stack.api.get(f"/api/v1/jobs/{job_id}")).json()
            return job if job.get("note") else None

        job = await wait_until(shows_the_wait, message="the job shows its wait")
        assert job["note"] == "waiting for pacing, next slot in 2 s"
        assert job["status"] == "running"
        chunks = (await stack.api.get(f"/api/v1/jobs/{job_id}/chunks")).json()
        assert (chunks[0]["status"], chunks[0]["outcome"]) == ("waiting", "pacing")

        done = await stack.wait_job(job_id)
        assert done["status"] == "succeeded"
        assert done["note"] is None
        events = (await stack.api.get(f"/api/v1/jobs/{job_id}/events")).json()
        types = [e["type"] for e in events]
        assert "chunk.failed" not in types
        assert "job.retrying" not in types
        (wait,) = [e for e in events if e["type"] == "job.waiting"]
        assert wait["data"]["chunk"] == 0
        assert wait["data"]["outcome"] == "pacing"
        assert wait["data"]["until"] is not None


async def test_a_short_wait_is_not_worth_an_event(
    redis_url: str, database_url: str, namespace: str
) -> None:
    async with running_stack(redis_url, database_url, namespace, with_worker=False) as stack:
        await stack.start_worker("w", source=WaitingSim(wait_s=0.2, waits=3))
        job_id = await stack.submit(**JOB, end="2024-01-10")
        assert (await stack.wait_job(job_id))["status"] == "succeeded"
        events = (await stack.api.get(f"/api/v1/jobs/{job_id}/events")).json()
        assert "job.waiting" not in [e["type"] for e in events]


async def test_a_cancel_interrupts_a_long_wait_at_once(
    redis_url: str, database_url: str, namespace: str
) -> None:
    async with running_stack(redis_url, database_url, namespace, with_worker=False) as stack:
        await stack.start_worker("w", source=WaitingSim(wait_s=60, while_planning=True))
        job_id = await stack.submit(**JOB, end="2024-01-10")

        async def waiting_while_planning() -> bool:
            job = (await stack.api.get(f"/api/v1/jobs/{job_id}")).json()
            return bool(job.get("note") == "waiting for the gateway")

        await wait_until(waiting_while_planning, message="the job waits while planning")
        asked = time.monotonic()
        await stack.api.post(f"/api/v1/jobs/{job_id}/cancel")
        job = await stack.wait_job(job_id, timeout=5)
        assert job["status"] == "cancelled"
        assert time.monotonic() - asked < 2.0
