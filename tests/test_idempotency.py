"""One idempotency key, one job: across API replicas, concurrent submits and raw XADDs."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import httpx

from backfill_api.app import create_app
from backfill_api.settings import ApiSettings
from backfill_bus.codec import text
from backfill_contracts import parse_command
from tests.support.stack import TEST_TOKENS, Stack, running_stack, wait_until

JOB = {"source": "sim", "symbol": "IDEM", "bar_size": "1d", "start": "2024-01-01"}
REQUEST = {**JOB, "end": "2024-02-01"}  # 23 weekdays: 23 daily bars
RAW = {"type": "collect_bars", **REQUEST}


@asynccontextmanager
async def api_replica(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """Another API process on the same Redis and database: its own app, clients and bus."""
    app = create_app(
        ApiSettings(
            redis_url=stack.redis_url,
            redis_namespace=stack.names.namespace,
            database_url=stack.database_url,
            api_tokens=TEST_TOKENS,
        )
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://replica") as client:
            client.headers.update(stack.api.headers)  # the same credentials
            yield client


async def commands_on(stack: Stack) -> list[Any]:
    entries: Any = await stack.redis.xrange(stack.names.command_stream("sim"))
    return [parse_command(fields[b"__data__"]) for _, fields in entries]


async def dead_letters(stack: Stack) -> list[dict[bytes, bytes]]:
    entries: Any = await stack.redis.xrange(stack.names.dlq)
    return [fields for _, fields in entries]


async def test_twenty_concurrent_submits_through_two_replicas_make_one_job(
    redis_url: str, database_url: str, namespace: str
) -> None:
    async with running_stack(redis_url, database_url, namespace) as stack:
        async with AsyncExitStack() as replicas:
            apis = [stack.api, await replicas.enter_async_context(api_replica(stack))]
            responses = await asyncio.gather(
                *(
                    apis[n % 2].post(
                        "/api/v1/jobs", json=REQUEST, headers={"Idempotency-Key": "order-42"}
                    )
                    for n in range(20)
                )
            )
        assert sorted(r.status_code for r in responses) == [200] * 19 + [202]
        job_ids = {r.json()["job_id"] for r in responses}
        assert len(job_ids) == 1, job_ids
        (job_id,) = job_ids
        first = next(r for r in responses if r.status_code == 202)
        assert first.json() == {"job_id": job_id, "status": "queued", "replayed": False}
        assert "Idempotent-Replayed" not in first.headers
        for replay in (r for r in responses if r.status_code == 200):
            assert replay.json()["replayed"] is True
            assert replay.headers["Idempotent-Replayed"] == "true"

        job = await stack.wait_job(job_id)
        assert job["status"] == "succeeded"
        assert job["progress"]["bars_stored"] == 23
        published = await commands_on(stack)
        assert [(c.job_id, c.idempotency_key) for c in published] == [(job_id, "order-42")]
        listed = (await stack.api.get("/api/v1/jobs", params={"symbol": "IDEM"})).json()
        assert [j["job_id"] for j in listed["jobs"]] == [job_id]

        # Later, the same request again under the key: the finished job, with its status now.
        late = await stack.api.post(
            "/api/v1/jobs", json=REQUEST, headers={"Idempotency-Key": "order-42"}
        )
        assert late.status_code == 200
        assert late.json() == {"job_id": job_id, "status": "succeeded", "replayed": True}


async def test_the_key_may_come_in_the_body_and_equal_requests_are_compared_after_validation(
    redis_url: str, database_url: str, namespace: str
) -> None:
    async with running_stack(redis_url, database_url, namespace, with_worker=False) as stack:
        first = await stack.api.post("/api/v1/jobs", json={**REQUEST, "idempotency_key": "k-1"})
        assert first.status_code == 202, first.text
        # The same request spelled differently (an explicit UTC time, the default options).
        same = {
            **REQUEST,
            "start": "2024-01-01T00:00:00Z",
            "options": {"latency_ms": 0},
        }
        again = await stack.api.post("/api/v1/jobs", json=same, headers={"Idempotency-Key": "k-1"})
        assert again.status_code == 200, again.text
        assert again.json()["job_id"] == first.json()["job_id"]
        assert again.json()["status"] in {"queued", "running"}  # no worker: it stays queued
        assert len(await commands_on(stack)) == 1


async def test_a_key_reused_for_another_request_is_refused_and_nothing_is_published(
    redis_url: str, database_url: str, namespace: str
) -> None:
    async with running_stack(redis_url, database_url, namespace, with_worker=False) as stack:
        first = await stack.api.post(
            "/api/v1/jobs", json=REQUEST, headers={"Idempotency-Key": "k-2"}
        )
        assert first.status_code == 202
        job_id = first.json()["job_id"]
        other = await stack.api.post(
            "/api/v1/jobs",
            json={**REQUEST, "symbol": "OTHER"},
            headers={"Idempotency-Key": "k-2"},
        )
        assert other.status_code == 422
        detail = other.json()["detail"]
        assert "idempotency key 'k-2' was first used with a different request" in detail
        assert job_id in detail

        disagree = await stack.api.post(
            "/api/v1/jobs",
            json={**REQUEST, "idempotency_key": "k-3"},
            headers={"Idempotency-Key": "k-4"},
        )
        assert disagree.status_code == 422
        assert "differ" in disagree.json()["detail"]
        too_long = await stack.api.post(
            "/api/v1/jobs", json=REQUEST, headers={"Idempotency-Key": "x" * 201}
        )
        assert too_long.status_code == 422
        assert [c.job_id for c in await commands_on(stack)] == [job_id]
        assert not await stack.redis.exists(f"{namespace}idem:k-3", f"{namespace}idem:k-4")


async def test_a_raw_xadd_repeating_a_key_runs_once_and_the_repeat_is_dead_lettered(
    redis_url: str, database_url: str, namespace: str
) -> None:
    async with running_stack(redis_url, database_url, namespace, with_worker=False) as stack:
        stream = stack.names.command_stream("sim")
        raw = {**RAW, "idempotency_key": "raw-key", "correlation_id": "trace-7"}
        first = text(await stack.redis.xadd(stream, {"__data__": json.dumps(
            {**raw, "job_id": "raw-idem-1"}
        )}))  # fmt: skip
        repeat = text(await stack.redis.xadd(stream, {"__data__": json.dumps(
            {**raw, "job_id": "raw-idem-2"}
        )}))  # fmt: skip
        # The API sees the key a raw command claimed: the same request gets that job back.
        await stack.start_worker("idem-worker")
        job = await stack.wait_job("raw-idem-1")
        assert job["status"] == "succeeded"
        assert job["progress"]["bars_stored"] == 23

        letters = await wait_until(lambda: dead_letters(stack), message="the repeat dead-lettered")
        assert [fields[b"entry_id"].decode() for fields in letters] == [repeat]
        reason = letters[0][b"reason"].decode()
        assert reason == (
            "idempotency key 'raw-key' already names job raw-idem-1; job raw-idem-2 was not run"
        )
        assert json.loads(letters[0][b"payload"])["job_id"] == "raw-idem-2"
        missing = await stack.api.get("/api/v1/jobs/raw-idem-2")
        assert missing.status_code == 404
        pending: Any = await stack.redis.xpending(stream, "sim-workers")
        assert pending["pending"] == 0
        assert first != repeat

        via_api = await stack.api.post(
            "/api/v1/jobs", json=REQUEST, headers={"Idempotency-Key": "raw-key"}
        )
        assert via_api.status_code == 200
        assert via_api.json()["job_id"] == "raw-idem-1"
        events = (await stack.api.get("/api/v1/jobs/raw-idem-1/events")).json()
        submitted = next(e for e in events if e["type"] == "job.submitted")
        assert submitted["data"]["idempotency_key"] == "raw-key"
        assert submitted["data"]["correlation_id"] == "trace-7"


async def test_a_raw_xadd_with_a_key_the_api_used_does_not_run_a_second_job(
    redis_url: str, database_url: str, namespace: str
) -> None:
    async with running_stack(redis_url, database_url, namespace) as stack:
        job_id = (
            await stack.api.post("/api/v1/jobs", json=REQUEST, headers={"Idempotency-Key": "k-5"})
        ).json()["job_id"]
        raw = {**RAW, "job_id": "raw-after-api", "idempotency_key": "k-5"}
        await stack.redis.xadd(stack.names.command_stream("sim"), {"__data__": json.dumps(raw)})
        assert (await stack.wait_job(job_id))["status"] == "succeeded"
        letters = await wait_until(lambda: dead_letters(stack), message="the raw repeat refused")
        assert f"already names job {job_id}" in letters[0][b"reason"].decode()
        listed = (await stack.api.get("/api/v1/jobs", params={"symbol": "IDEM"})).json()
        assert [j["job_id"] for j in listed["jobs"]] == [job_id]


async def test_the_correlation_id_header_reaches_the_command_and_the_submitted_event(
    redis_url: str, database_url: str, namespace: str
) -> None:
    async with running_stack(redis_url, database_url, namespace) as stack:
        response = await stack.api.post(
            "/api/v1/jobs", json=REQUEST, headers={"X-Correlation-ID": "req-abc-123"}
        )
        assert response.status_code == 202
        job_id = response.json()["job_id"]
        (command,) = await commands_on(stack)
        assert command.correlation_id == "req-abc-123"
        assert command.idempotency_key is None
        await stack.wait_job(job_id)
        events = (await stack.api.get(f"/api/v1/jobs/{job_id}/events")).json()
        submitted = next(e for e in events if e["type"] == "job.submitted")
        assert submitted["data"]["correlation_id"] == "req-abc-123"
