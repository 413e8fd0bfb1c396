"""The foundation's promise, end to end on real Redis and a real database (SQLite, PostgreSQL)."""

from __future__ import annotations

import csv
import io

from tests.support.stack import running_stack

QUARTER = {"source": "sim", "symbol": "AAPL", "start": "2024-01-01", "end": "2024-04-01"}


async def test_minute_bars_for_a_quarter(redis_url: str, database_url: str, namespace: str) -> None:
    async with running_stack(redis_url, database_url, namespace) as stack:
        job_id = await stack.submit(**QUARTER, bar_size="1m")
        job = await stack.wait_job(job_id)

        assert job["status"] == "succeeded", job
        assert job["progress"] == {
            "chunks_done": 65,
            "chunks_total": 65,
            "bars_stored": 25_350,
            "percent": 100.0,
        }
        assert job["error"] is None
        response = await stack.api.get(
            "/api/v1/bars",
            params={"source": "sim", "symbol": "AAPL", "bar_size": "1m",
                    "start": "2024-01-01", "end": "2024-04-01"},
        )  # fmt: skip
        body = response.json()
        assert body["count"] == 25_350 == len(body["bars"])
        stamps = [bar["ts"] for bar in body["bars"]]
        assert len(set(stamps)) == len(stamps), "duplicate bars"
        assert stamps == sorted(stamps)
        assert stamps[0] == "2024-01-01T14:30:00Z"  # 09:30 New York, winter time
        assert stamps[-1] == "2024-03-29T19:59:00Z"  # 15:59 New York, summer time


async def test_daily_bars_and_the_job_history(
    redis_url: str, database_url: str, namespace: str
) -> None:
    async with running_stack(redis_url, database_url, namespace) as stack:
        job_id = await stack.submit(**QUARTER, bar_size="1d")
        job = await stack.wait_job(job_id)
        assert job["status"] == "succeeded"
        assert job["progress"]["bars_stored"] == 65

        csv_response = await stack.api.get(
            "/api/v1/bars",
            params={"source": "sim", "symbol": "AAPL", "bar_size": "1d", "format": "csv"},
        )
        assert csv_response.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(csv_response.text)))
        assert len(rows) == 65
        assert rows[0]["ts"] == "2024-01-01T00:00:00+00:00"
        assert all(float(r["low"]) <= float(r["close"]) <= float(r["high"]) for r in rows)

        events = (await stack.api.get(f"/api/v1/jobs/{job_id}/events")).json()
        types = [event["type"] for event in events]
        assert types == ["job.submitted", "job.started", "chunk.collected", "job.succeeded"]
        assert [event["seq"] for event in events] == [1, 2, 3, 4]
        assert events[2]["data"]["bars"] == 65

        chunks = (await stack.api.get(f"/api/v1/jobs/{job_id}/chunks")).json()
        assert [(c["status"], c["bars"]) for c in chunks] == [("done", 65)]


async def test_listing_stats_and_a_failing_symbol(
    redis_url: str, database_url: str, namespace: str
) -> None:
    async with running_stack(redis_url, database_url, namespace) as stack:
        ok = await stack.submit(**QUARTER, bar_size="1d")
        bad = await stack.submit(**{**QUARTER, "symbol": "INVALID"}, bar_size="1d")
        assert (await stack.wait_job(ok))["status"] == "succeeded"
        failed = await stack.wait_job(bad)
        assert failed["status"] == "failed"
        assert failed["error"]["outcome"] == "invalid_symbol"
        assert "INVALID" in failed["error"]["message"]

        listing = (await stack.api.get("/api/v1/jobs")).json()
        assert [j["job_id"] for j in listing["jobs"]] == [bad, ok]  # newest first
        first_page = (await stack.api.get("/api/v1/jobs", params={"limit": 1})).json()
        assert [j["job_id"] for j in first_page["jobs"]] == [bad]
        second_page = (
            await stack.api.get(
                "/api/v1/jobs", params={"limit": 1, "cursor": first_page["next_cursor"]}
            )
        ).json()
        assert [j["job_id"] for j in second_page["jobs"]] == [ok]
        assert second_page["next_cursor"] is None
        only_failed = (await stack.api.get("/api/v1/jobs", params={"status": "failed"})).json()
        assert [j["job_id"] for j in only_failed["jobs"]] == [bad]
        assert (await stack.api.get("/api/v1/jobs/active")).json()["jobs"] == []

        stats = (await stack.api.get("/api/v1/stats")).json()
        assert stats["jobs_total"] == 2
        assert stats["by_status"] == {"succeeded": 1, "failed": 1}
        assert stats["by_source"] == {"sim": {"succeeded": 1, "failed": 1}}
        assert stats["success_rate"] == 0.5
        assert stats["bars_stored"] == 65
        assert stats["mean_duration_s"] is not None
        assert stats["mean_duration_s"] >= 0

        health = await stack.api.get("/api/v1/health")
        assert health.status_code == 200
        assert health.json() == {"status": "ok", "checks": {"redis": "ok", "database": "ok"}}


async def test_transient_failures_are_retried_to_success(
    redis_url: str, database_url: str, namespace: str
) -> None:
    async with running_stack(redis_url, database_url, namespace) as stack:
        job_id = await stack.submit(
            **{**QUARTER, "end": "2024-01-08"}, bar_size="1m", options={"fail_every": 2}
        )
        job = await stack.wait_job(job_id)
        assert job["status"] == "succeeded"
        assert job["progress"]["bars_stored"] == 5 * 390
        events = (await stack.api.get(f"/api/v1/jobs/{job_id}/events")).json()
        failed = [e for e in events if e["type"] == "chunk.failed"]
        assert [e["data"]["chunk"] for e in failed] == [1, 3]
        assert all(
            e["data"]["outcome"] == "upstream_error" and e["data"]["will_retry"] for e in failed
        )
        assert sum(e["type"] == "job.retrying" for e in events) == 2
        chunks = (await stack.api.get(f"/api/v1/jobs/{job_id}/chunks")).json()
        assert [c["tries"] for c in chunks] == [1, 2, 1, 2, 1]
