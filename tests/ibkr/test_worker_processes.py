"""`backfill-ibkr-worker` processes sharing one login: the pacing benchmark, made small.

The benchmark itself (tests/benchmarks/ibkr_pacing.py) reports the figures; this runs it with
fewer requests so the real entry point, the shared governor and client-id leases across
processes are exercised on every CI run. It asserts correctness only, never speed.
"""

from __future__ import annotations

from tests.benchmarks.ibkr_pacing import run


async def test_two_worker_processes_collect_without_a_pacing_violation() -> None:
    result = await run(workers=2, days=6, scale=0.005)
    assert result["jobs_succeeded"] == result["jobs"] == 6
    assert result["historical_requests"] == result["expected_requests"] == 78
    assert result["violations"] == 0
    assert set(result["per_client"]) == {"10", "11"}  # both processes, distinct client ids
