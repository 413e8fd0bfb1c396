"""Listing jobs by when they were submitted (the console's day filter), and plan estimates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from backfill_contracts import BarSize
from backfill_contracts.estimates import estimate_plan
from tests.support.stack import running_stack

JOB = {"source": "sim", "symbol": "AAPL", "bar_size": "1d", "start": "2024-01-01"}


async def test_jobs_listed_by_submission_time(
    redis_url: str, database_url: str, namespace: str
) -> None:
    async with running_stack(redis_url, database_url, namespace) as stack:
        ids = {await stack.submit(**JOB, end="2024-01-10") for _ in range(3)}
        for job_id in ids:
            await stack.wait_job(job_id)
        now = datetime.now(UTC)
        hour_ago, in_an_hour = (now - timedelta(hours=1)).isoformat(), (now + timedelta(hours=1))

        async def listed(**params: str) -> set[str]:
            body = (await stack.api.get("/api/v1/jobs", params=params)).json()
            return {job["job_id"] for job in body["jobs"]}

        assert await listed(submitted_from=hour_ago) == ids
        assert await listed(submitted_from=in_an_hour.isoformat()) == set()
        assert await listed(submitted_before=hour_ago) == set()
        today = now.date().isoformat()  # a date is midnight UTC
        assert await listed(submitted_from=today, submitted_before=in_an_hour.isoformat()) == ids
        bad = await stack.api.get("/api/v1/jobs", params={"submitted_from": "yesterday"})
        assert bad.status_code == 422


def test_a_sim_estimate_counts_its_latency() -> None:
    start, end = datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 27, tzinfo=UTC)
    quick = estimate_plan("sim", BarSize.M1, start, end, {})
    slow = estimate_plan("sim", BarSize.M1, start, end, {"latency_ms": 250})
    assert quick.requests == slow.requests > 0
    assert quick.seconds == 0
    assert slow.seconds == slow.requests * 0.25
    assert "250 ms each" in slow.note
