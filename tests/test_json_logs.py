"""JSON logs carry the job and the request behind it; the API hands out correlation ids.

The worker test runs the real entry point (`python -m backfill_sim`) as a process, with
BACKFILL_LOG_FORMAT=json, and reads what it wrote.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from backfill_bus import Names
from backfill_bus.logs import (
    ContextFilter,
    JsonFormatter,
    LogSettings,
    TextFormatter,
    configure_logging,
    job_context,
)
from backfill_contracts import JobSucceeded, parse_event
from tests.support.http_receiver import HttpReceiver
from tests.support.stack import running_stack, wait_until

KEYS = {"ts", "level", "logger", "message", "service", "job_id", "correlation_id"}


def command(job_id: str, **extra: Any) -> dict[Any, Any]:
    body = {
        "type": "collect_bars",
        "job_id": job_id,
        "source": "sim",
        "symbol": "IBM",
        "bar_size": "1d",
        "start": "2024-01-01",
        "end": "2024-02-01",
        **extra,
    }
    return {"__data__": json.dumps(body)}


async def finished_jobs(redis: Redis, names: Names) -> set[str]:
    entries: Any = await redis.xrange(names.events)
    events = [parse_event(fields[b"__data__"]) for _, fields in entries]
    return {e.job_id for e in events if isinstance(e, JobSucceeded)}


async def test_a_worker_writes_json_lines_naming_the_job_and_its_correlation_id(
    redis: Redis, redis_url: str, namespace: str, tmp_path: Path
) -> None:
    names = Names(namespace)
    env = {
        **os.environ,
        "BACKFILL_REDIS_URL": redis_url,
        "BACKFILL_REDIS_NAMESPACE": namespace,
        "BACKFILL_WORKER_ID": f"{namespace}json-worker",
        "BACKFILL_LOG_FORMAT": "json",
        "BACKFILL_LOG_LEVEL": "info",
        "BACKFILL_POLL_INTERVAL_MS": "100",
    }
    log_path = tmp_path / "worker.log"
    await redis.xadd(names.command_stream("sim"), command("job-a", correlation_id="order-42"))
    await redis.xadd(names.command_stream("sim"), command("job-b"))  # no correlation id
    # A command refused to the dlq is logged under its job and request too.
    wrong = command("job-w", source="yahoo", correlation_id="order-43")
    await redis.xadd(names.command_stream("sim"), wrong)
    with log_path.open("wb") as log:
        worker = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "backfill_sim", env=env, stdout=log, stderr=log
        )
    try:

        async def both_done() -> bool:
            return {"job-a", "job-b"} <= await finished_jobs(redis, names)

        await wait_until(both_done, timeout=60, message="both jobs succeeded")
    finally:
        worker.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(worker.wait(), timeout=30)
    assert code == 0, log_path.read_text()

    lines = [line for line in log_path.read_text().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert records
    assert all(set(record) >= KEYS for record in records)
    assert {record["service"] for record in records} == {"sim-worker"}
    by_job: dict[str | None, list[dict[str, Any]]] = {}
    for record in records:
        by_job.setdefault(record["job_id"], []).append(record)
    job_a, job_b = by_job["job-a"], by_job["job-b"]
    assert {r["correlation_id"] for r in job_a} == {"order-42"}
    assert {r["correlation_id"] for r in job_b} == {"job-b"}  # the job id when none was sent
    assert any(r["message"].startswith("running job job-a") for r in job_a)
    assert any(r["message"] == "job job-a left this worker: finished" for r in job_a)
    (refused,) = by_job["job-w"]
    assert refused["correlation_id"] == "order-43"
    assert refused["message"].startswith("dead-lettering")
    # Outside a job (starting, stopping) the ids are null, not missing.
    outside = by_job[None]
    assert any("consuming" in r["message"] for r in outside)
    assert all(r["correlation_id"] is None for r in outside)


def _record(message: str, exc_info: Any = None) -> logging.LogRecord:
    record = logging.LogRecord("backfill.test", logging.ERROR, __file__, 1, message, (), exc_info)
    ContextFilter("api").filter(record)
    return record


def test_json_lines_carry_the_traceback_and_text_lines_the_job() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        failure = sys.exc_info()
    with job_context("job-1", "corr-1"):
        failed = _record("it failed", failure)
        line = json.loads(JsonFormatter().format(failed))
        text = TextFormatter().format(_record("plain"))
    assert line["job_id"] == "job-1"
    assert line["correlation_id"] == "corr-1"
    assert line["service"] == "api"
    assert line["level"] == "ERROR"
    assert "ValueError: boom" in line["exc_info"]
    assert text.endswith("backfill.test: plain [job job-1]")
    outside = json.loads(JsonFormatter().format(_record("later")))
    assert outside["job_id"] is None
    assert outside["correlation_id"] is None


async def test_the_api_echoes_or_creates_a_correlation_id_and_passes_it_to_the_job(
    redis_url: str, database_url: str, namespace: str
) -> None:
    async with running_stack(redis_url, database_url, namespace, with_worker=False) as stack:
        given = await stack.api.get("/api/v1/health/live", headers={"X-Correlation-ID": "abc-1"})
        assert given.headers["x-correlation-id"] == "abc-1"

        job = {"source": "sim", "symbol": "IBM", "bar_size": "1d", "start": "2024-01-01"}
        made = await stack.api.post("/api/v1/jobs", json={**job, "end": "2024-01-10"})
        assert made.status_code == 202, made.text
        generated = made.headers["x-correlation-id"]
        assert len(generated) == 32
        # The id the API made is the one on the command, so the worker's lines carry it too.
        entries: Any = await stack.redis.xrange(stack.names.command_stream("sim"))
        body = json.loads(entries[-1][1][b"__data__"])
        assert body["job_id"] == made.json()["job_id"]
        assert body["correlation_id"] == generated
        # The projection keeps it, so the projector logs the job under the worker's id too.
        projected = await stack.wait_job(made.json()["job_id"], {"queued"})
        assert projected["correlation_id"] == generated


async def test_a_malformed_correlation_id_is_refused_with_a_reason(
    redis_url: str, database_url: str, namespace: str
) -> None:
    job = {"source": "sim", "symbol": "IBM", "bar_size": "1d", "start": "2024-01-01"}
    async with running_stack(redis_url, database_url, namespace, with_worker=False) as stack:
        for bad in ["has space", "x" * 201, "naïve"]:
            response = await stack.api.post(
                "/api/v1/jobs",
                json={**job, "end": "2024-01-10"},
                headers=[(b"X-Correlation-ID", bad.encode())],
            )
            assert response.status_code == 400, bad
            assert "X-Correlation-ID must be" in response.json()["detail"]
        # Refused before anything was accepted: no job, no command.
        assert not await stack.redis.exists(stack.names.command_stream("sim"))


async def test_request_urls_which_may_carry_a_token_stay_out_of_the_logs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """httpx logs each request's URL at INFO; a webhook's URL may hold a token in its query."""
    receiver = HttpReceiver()
    url = await receiver.start()
    root = logging.getLogger()
    saved = list(root.handlers), root.level
    quiet = {name: logging.getLogger(name).level for name in ("httpx", "httpcore")}
    try:
        configure_logging("projector", LogSettings(log_format="json", log_level="DEBUG"))
        async with httpx.AsyncClient() as client:
            response = await client.post(f"{url}/hook?token=hush-123", content=b"{}")
        logging.getLogger("backfill.test").info("posted %d", response.status_code)
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        for name, level in quiet.items():
            logging.getLogger(name).setLevel(level)
        await receiver.close()
    written = capsys.readouterr().err
    assert json.loads(written.splitlines()[-1])["message"] == "posted 200"  # the handler wrote
    assert receiver.received[0].path == "/hook?token=hush-123"
    assert "hush-123" not in written
