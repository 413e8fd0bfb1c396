"""Universes end to end: the real API, Redis, projector and sim workers, on SQLite and PostgreSQL.

A universe of N symbols x M bar sizes fans out N x M jobs as one run; the run's view sums them;
submitting the run again makes no new job; cancelling the run ends every job of it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from backfill_cli.main import main
from tests.support.api_server import served_api
from tests.support.stack import (
    ADMIN_TOKEN,
    SUBMIT_TOKEN,
    TERMINAL,
    Stack,
    running_stack,
    wait_until,
)

SYMBOLS = ["UNVA", "UNVB", "UNVC"]
UNIVERSE: dict[str, Any] = {
    "name": "test-megacaps",
    "source": "sim",
    "symbols": SYMBOLS,
    "bar_sizes": ["1d", "1h"],
    "start": "2024-01-01",
    "end": "2024-02-01",
    "description": "three symbols, two bar sizes",
}
DAYS = 23  # weekdays in January 2024: one daily sim bar each


async def progress(stack: Stack, name: str, run_id: str) -> dict[str, Any]:
    response = await stack.api.get(f"/api/v1/universes/{name}/runs/{run_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def wait_run_finished(stack: Stack, name: str, run_id: str, timeout: float = 60) -> Any:
    async def finished() -> dict[str, Any] | None:
        body = await progress(stack, name, run_id)
        return body if body["finished"] else None

    return await wait_until(finished, timeout, f"run {run_id} finished")


async def test_a_universe_fans_out_one_job_per_series_and_sums_them(
    redis_url: str, database_url: str, namespace: str
) -> None:
    async with running_stack(redis_url, database_url, namespace) as stack:
        await stack.start_worker(f"{namespace}worker-2")
        created = await stack.api.put("/api/v1/universes/test-megacaps", json=UNIVERSE)
        assert created.status_code == 201, created.text
        again = await stack.api.put("/api/v1/universes/test-megacaps", json=UNIVERSE)
        assert again.status_code == 200
        listed = (await stack.api.get("/api/v1/universes")).json()
        assert [u["name"] for u in listed] == ["test-megacaps"]
        assert listed[0]["bar_sizes"] == ["1d", "1h"]

        submitted = await stack.api.post(
            "/api/v1/universes/test-megacaps/runs", json={"run_id": "r1"}
        )
        assert submitted.status_code == 202, submitted.text
        run = submitted.json()
        assert (run["created"], run["replayed"]) == (6, 0)
        series = sorted((j["symbol"], j["bar_size"]) for j in run["jobs"])
        assert series == sorted((s, b) for s in SYMBOLS for b in ("1d", "1h"))
        job_ids = {j["job_id"] for j in run["jobs"]}
        assert len(job_ids) == 6

        # The same run again (a retried request, a double click): the same jobs, none new.
        repeat = await stack.api.post("/api/v1/universes/test-megacaps/runs", json={"run_id": "r1"})
        assert repeat.status_code == 202
        assert (repeat.json()["created"], repeat.json()["replayed"]) == (0, 6)
        assert {j["job_id"] for j in repeat.json()["jobs"]} == job_ids

        done = await wait_run_finished(stack, "test-megacaps", "r1")
        assert done["jobs_total"] == 6
        assert done["by_status"] == {"succeeded": 6}
        assert done["percent"] == 100.0
        assert {j["job_id"] for j in done["jobs"]} == job_ids
        assert all(
            (j["universe"], j["universe_run"]) == ("test-megacaps", "r1") for j in done["jobs"]
        )
        per_job = sum(j["progress"]["bars_stored"] for j in done["jobs"])
        assert done["bars_stored"] == per_job
        assert (
            done["chunks_done"]
            == done["chunks_total"]
            == sum(j["progress"]["chunks_total"] for j in done["jobs"])
        )
        stored = 0
        for symbol in SYMBOLS:
            for size in ("1d", "1h"):
                params = {"source": "sim", "symbol": symbol, "bar_size": size}
                stored += (await stack.api.get("/api/v1/bars", params=params)).json()["count"]
        assert stored == per_job
        assert sum(j["progress"]["bars_stored"] for j in done["jobs"] if j["bar_size"] == "1d") == (
            3 * DAYS
        )
        # Exactly one job per series in the whole jobs table: the repeat made none.
        page = (await stack.api.get("/api/v1/jobs", params={"limit": 100})).json()
        assert len(page["jobs"]) == 6

        runs = (await stack.api.get("/api/v1/universes/test-megacaps/runs")).json()
        assert [(r["run_id"], r["jobs"]) for r in runs] == [("r1", 6)]

        # A second run without an id gets a new one, and new jobs.
        second = (await stack.api.post("/api/v1/universes/test-megacaps/runs")).json()
        assert second["run_id"] != "r1"
        assert second["created"] == 6
        assert not {j["job_id"] for j in second["jobs"]} & job_ids
        await wait_run_finished(stack, "test-megacaps", second["run_id"])

        # Deleting the universe forgets it and its runs; jobs and bars stay.
        assert (await stack.api.delete("/api/v1/universes/test-megacaps")).status_code == 204
        assert (await stack.api.get("/api/v1/universes/test-megacaps")).status_code == 404
        assert (await stack.api.get("/api/v1/universes/test-megacaps/runs/r1")).status_code == 404
        assert (await stack.api.get(f"/api/v1/jobs/{next(iter(job_ids))}")).status_code == 200


async def test_cancelling_a_run_ends_every_job_of_it(
    redis_url: str, database_url: str, namespace: str
) -> None:
    async with running_stack(redis_url, database_url, namespace) as stack:
        slow = {
            **UNIVERSE,
            "name": "test-slow",
            "symbols": ["SLWA", "SLWB", "SLWC", "SLWD"],
            "bar_sizes": ["1m"],
            "options": {"latency_ms": 100},  # 23 daily chunks: over 2 s a job, one at a time
        }
        assert (await stack.api.put("/api/v1/universes/test-slow", json=slow)).status_code == 201
        run = (
            await stack.api.post("/api/v1/universes/test-slow/runs", json={"run_id": "c1"})
        ).json()
        assert run["created"] == 4

        async def one_running() -> bool:
            body = await progress(stack, "test-slow", "c1")
            return bool(body["by_status"].get("running", 0) and body["chunks_done"] >= 2)

        await wait_until(one_running, message="a job of the run running")
        cancelled = await stack.api.post("/api/v1/universes/test-slow/runs/c1/cancel")
        assert cancelled.status_code == 202, cancelled.text
        counts = cancelled.json()
        assert counts["cancelled"] + counts["cancelling"] + counts["already_ended"] == 4
        assert counts["cancelling"] >= 1  # the running one stops between chunks
        assert counts["cancelled"] >= 1  # queued ones never start

        done = await wait_run_finished(stack, "test-slow", "c1", timeout=30)
        assert set(done["by_status"]) <= TERMINAL
        assert done["by_status"].get("cancelled", 0) >= 2
        assert done["by_status"].get("failed", 0) == 0
        assert done["percent"] == 100.0
        for job in done["jobs"]:
            if job["status"] == "cancelled":
                assert job["error"]["message"] == "universe test-slow run c1 cancelled"
                assert job["progress"]["chunks_done"] < job["progress"]["chunks_total"] or (
                    job["progress"]["chunks_total"] == 0
                )

        # Everything has ended now: a second cancel touches nothing.
        again = (await stack.api.post("/api/v1/universes/test-slow/runs/c1/cancel")).json()
        assert (again["cancelled"], again["cancelling"], again["already_ended"]) == (0, 0, 4)


async def test_universe_scopes_and_checks(
    redis_url: str, database_url: str, namespace: str
) -> None:
    async with running_stack(redis_url, database_url, namespace, with_worker=False) as stack:
        async with stack.client(SUBMIT_TOKEN) as submitter:
            # Defining a universe is shared configuration: admin only.
            refused = await submitter.put("/api/v1/universes/test-megacaps", json=UNIVERSE)
            assert refused.status_code == 403
            assert (
                await stack.api.put("/api/v1/universes/test-megacaps", json=UNIVERSE)
            ).is_success
            # Submitting and cancelling a run: the submit scope, as for jobs.
            run = await submitter.post(
                "/api/v1/universes/test-megacaps/runs", json={"run_id": "s1"}
            )
            assert run.status_code == 202, run.text
            cancel = await submitter.post("/api/v1/universes/test-megacaps/runs/s1/cancel")
            assert cancel.status_code == 202
            assert cancel.json()["cancelled"] == 6  # no worker: all still queued
        done = await wait_run_finished(stack, "test-megacaps", "s1")
        assert done["by_status"] == {"cancelled": 6}

        bad = {**UNIVERSE, "symbols": ["OK", "not a symbol"]}
        answer = await stack.api.put("/api/v1/universes/test-megacaps", json=bad)
        assert answer.status_code == 422
        mismatch = await stack.api.put("/api/v1/universes/other", json=UNIVERSE)
        assert mismatch.status_code == 422
        missing = await stack.api.post("/api/v1/universes/nope/runs")
        assert missing.status_code == 404

        # The run id names one set of requests: after the universe changed, it is refused.
        changed = {**UNIVERSE, "end": "2024-03-01"}
        assert (await stack.api.put("/api/v1/universes/test-megacaps", json=changed)).is_success
        stale = await stack.api.post("/api/v1/universes/test-megacaps/runs", json={"run_id": "s2"})
        assert stale.status_code == 202  # a new run id is fine
        replay = await stack.api.post("/api/v1/universes/test-megacaps/runs", json={"run_id": "s1"})
        assert replay.status_code == 202  # s1 is recorded: its jobs are answered, none new
        assert replay.json()["created"] == 0


async def test_the_cli_defines_runs_follows_and_cancels(
    redis_url: str,
    database_url: str,
    namespace: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("BACKFILL_API_TOKEN", ADMIN_TOKEN)
    async with running_stack(redis_url, database_url, namespace) as stack, served_api(stack) as url:

        async def cli(*argv: str) -> tuple[int, str]:
            code = await asyncio.to_thread(main, [*argv, "--api-url", url])
            return code, capsys.readouterr().out

        code, out = await cli(
            "universe", "create", "cli-u", "--source", "sim", "--symbols", "CLIA", "CLIB",
            "--bar-size", "1d", "--start", "2024-01-01", "--end", "2024-02-01",
        )  # fmt: skip
        assert code == 0
        assert out == "universe cli-u: sim, 2 series (one job each per run)\n"
        code, out = await cli("universe", "list")
        assert out == "cli-u  sim  2 symbols x 1d  2024-01-01 to 2024-02-01\n"

        code, out = await cli("universe", "run", "cli-u", "--run-id", "k1")  # follows to the end
        assert code == 0
        assert (
            out.splitlines()[0]
            == "run k1 of cli-u: 2 jobs submitted, 0 already submitted by this run"
        )
        assert out.splitlines()[-1] == f"cli-u run k1: 100%  2 jobs (2 succeeded)  {2 * DAYS} bars"
        code, out = await cli("universe", "run", "cli-u", "--run-id", "k1", "--no-follow")
        assert out == "run k1 of cli-u: 0 jobs submitted, 2 already submitted by this run\n"
        code, out = await cli("universe", "status", "cli-u", "k1")
        assert out.splitlines()[0] == f"cli-u run k1: 100%  2 jobs (2 succeeded)  {2 * DAYS} bars"
        assert [line.split()[:3] for line in out.splitlines()[1:]] == [
            ["CLIA", "1d", "succeeded"],
            ["CLIB", "1d", "succeeded"],
        ]
        code, out = await cli("universe", "cancel", "cli-u", "k1")
        assert out == (
            "run k1 of cli-u: 0 cancelled, 0 stopping between chunks, 2 had already ended\n"
        )
        code, out = await cli("universe", "show", "cli-u")
        assert "  run k1  " in out
        code, out = await cli("universe", "delete", "cli-u")
        assert (code, out) == (0, "universe cli-u deleted (its jobs and bars stay)\n")
        code, _ = await cli("universe", "show", "cli-u")
        assert code == 1  # a 404
