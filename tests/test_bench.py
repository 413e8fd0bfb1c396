"""`backfill bench --quick` end to end, through the CLI, on the test PostgreSQL server.

No speed is asserted (the machine may be busy): only that every workload ran (once, as
`--runs 1`, to keep CI short), measured what it was meant to (the bench checks its own bar
and job counts), gave sane figures, and that the JSON and the charts were written.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.servers import postgres_admin_url, postgres_required

pytestmark = pytest.mark.postgres

WORKLOADS = ("F1", "F2", "A1-redis", "A1-http", "A2", "A3", "A4", "A5", "A7", "A6", "C1", "C2")
CHROMIUM = Path("/usr/bin/chromium")
BUDGET_S = 420  # under three minutes on an idle 2-core machine; slack for a busy one


def _admin_url() -> str:
    url = postgres_admin_url()
    if url is not None:
        return url
    reason = "the benchmark needs PostgreSQL: set BACKFILL_TEST_POSTGRES_URL"
    if postgres_required():
        pytest.fail(f"BACKFILL_TEST_REQUIRE_POSTGRES is set, but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.mark.timeout(BUDGET_S + 30)
def test_the_quick_bench_measures_every_workload(tmp_path: Path) -> None:
    url = _admin_url()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    command = [sys.executable, "-m", "backfill_cli", "bench", "--quick", "--runs", "1"]
    result = subprocess.run(
        [*command, "--out", str(tmp_path), "--database-url", url],
        capture_output=True,
        text=True,
        env=env,
        timeout=BUDGET_S,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    assert "workload" in result.stdout
    assert "vs floor" in result.stdout

    doc = json.loads((tmp_path / "results.json").read_text())
    assert doc["mode"] == "quick"
    found = {w["id"]: w for w in doc["workloads"]}
    assert set(found) == set(WORKLOADS)
    browser_required = os.environ.get("BACKFILL_TEST_REQUIRE_BROWSER", "") not in ("", "0")
    for workload_id, workload in found.items():
        if workload_id == "A5" and not CHROMIUM.exists() and not browser_required:
            assert workload["skipped"] == "skipped: no chromium"
            continue
        assert workload["skipped"] is None, workload
        assert len(workload["runs"]) == 1, workload_id
        for run in workload["runs"]:
            for key, value in run["figures"].items():
                assert math.isfinite(value), (workload_id, key)
                if key != "growth_pct":  # memory may well not grow at all
                    assert value > 0, (workload_id, key, value)
            for latencies in (run["samples"].get("latency_ms"),):
                assert latencies is None or len(latencies) > 0
        assert workload["summary"], workload_id

    a3 = found["A3"]["runs"][0]["notes"]
    assert a3 == {"jobs": 4, "chunks_per_job": 10, "bars_in_table": 4 * 10 * 390}
    # Celery's reference rows did the same work as A1's and A2's jobs: their bars are stored.
    assert found["C1"]["runs"][0]["notes"] == {"jobs": 30, "bars_in_table": 30 * 390}
    assert found["C2"]["runs"][0]["notes"] == {"jobs": 200, "bars_in_table": 200 * 390}
    for chart in ("latency-cdf.png", "throughput.png", "memory.png"):
        assert (tmp_path / chart).stat().st_size > 10_000, chart
