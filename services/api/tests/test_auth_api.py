"""The API refuses who it must, with clear answers (real Redis; SQLite and PostgreSQL)."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest

from backfill_bus import Names
from backfill_bus.tokens import create_token, revoke_token
from tests.support.stack import ADMIN_TOKEN, READ_TOKEN, SUBMIT_TOKEN, running_stack

JOB = {
    "source": "sim",
    "symbol": "AAPL",
    "bar_size": "1d",
    "start": "2024-01-01",
    "end": "2024-01-05",
}
WRONG_TOKEN = "not-a-token-anyone-was-given-42"


def refusal(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    detail = body["detail"]
    assert isinstance(detail, str)
    assert detail
    return detail


async def test_no_token_is_401_with_a_bearer_challenge(
    redis_url: str, database_url: str, namespace: str
) -> None:
    async with (
        running_stack(redis_url, database_url, namespace, with_worker=False) as stack,
        stack.client() as anonymous,
    ):
        response = await anonymous.post("/api/v1/jobs", json=JOB)
        assert refusal(response, 401) == (
            "missing bearer token: POST /api/v1/jobs needs a token with scope submit;"
            " send `Authorization: Bearer <token>`"
        )
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="backfill"'
        detail = refusal(await anonymous.get("/api/v1/jobs"), 401)
        assert "GET /api/v1/jobs needs a token with scope read" in detail
        # Nothing was submitted.
        assert not await stack.redis.exists(stack.names.command_stream("sim"))


async def test_an_unknown_or_malformed_token_is_401_and_never_echoed(
    redis_url: str, database_url: str, namespace: str
) -> None:
    async with running_stack(redis_url, database_url, namespace, with_worker=False) as stack:
        async with stack.client(WRONG_TOKEN) as wrong:
            response = await wrong.post("/api/v1/jobs", json=JOB)
            detail = refusal(response, 401)
            assert detail.startswith("unknown or revoked token")
            assert response.headers["WWW-Authenticate"] == (
                'Bearer realm="backfill", error="invalid_token"'
            )
            assert WRONG_TOKEN not in response.text
            # A near miss of a real token is just as unknown.
            near = await wrong.get(
                "/api/v1/jobs", headers={"Authorization": f"Bearer {ADMIN_TOKEN}x"}
            )
            refusal(near, 401)
        async with stack.client() as anonymous:
            basic = await anonymous.get("/api/v1/jobs", headers={"Authorization": "Basic dXNlcjpw"})
            assert "not a bearer token" in refusal(basic, 401)
            empty = await anonymous.get("/api/v1/jobs", headers={"Authorization": "Bearer "})
            assert "not a bearer token" in refusal(empty, 401)


async def test_each_scope_reaches_what_it_may_and_no_further(
    redis_url: str, database_url: str, namespace: str
) -> None:
    async with (
        running_stack(redis_url, database_url, namespace, with_worker=False) as stack,
        stack.client(READ_TOKEN) as reader,
        stack.client(SUBMIT_TOKEN) as submitter,
    ):
        assert (await reader.get("/api/v1/jobs")).status_code == 200
        assert (await reader.get("/api/v1/stats")).status_code == 200
        assert refusal(await reader.post("/api/v1/jobs", json=JOB), 403) == (
            "token 'env-2' has scope read; POST /api/v1/jobs needs submit"
        )
        accepted = await submitter.post("/api/v1/jobs", json=JOB)
        assert accepted.status_code == 202, accepted.text
        job_id = accepted.json()["job_id"]
        await stack.wait_job(job_id, {"queued"})
        assert refusal(await reader.post(f"/api/v1/jobs/{job_id}/cancel"), 403) == (
            "token 'env-2' has scope read; POST /api/v1/jobs/{job_id}/cancel needs submit"
        )
        cleanup = await submitter.post("/api/v1/maintenance/cleanup")
        assert refusal(cleanup, 403) == (
            "token 'env-3' has scope submit; POST /api/v1/maintenance/cleanup needs admin"
        )
        assert (await stack.api.post("/api/v1/maintenance/cleanup")).status_code == 202
        cancelled = await submitter.post(f"/api/v1/jobs/{job_id}/cancel")
        assert cancelled.status_code == 202, cancelled.text


async def test_health_is_open_with_or_without_a_token(
    redis_url: str, database_url: str, namespace: str
) -> None:
    async with running_stack(redis_url, database_url, namespace, with_worker=False) as stack:
        for token in (None, WRONG_TOKEN):
            async with stack.client(token) as client:
                assert (await client.get("/api/v1/health")).json()["status"] == "ok"
                assert (await client.get("/api/v1/health/live")).status_code == 200
                assert (await client.get("/openapi.json")).status_code == 200


async def test_open_reads_answer_gets_without_a_token_but_nothing_else(
    redis_url: str, database_url: str, namespace: str
) -> None:
    async with (
        running_stack(
            redis_url, database_url, namespace, with_worker=False, api_open_reads=True
        ) as stack,
        stack.client() as anonymous,
        stack.client(WRONG_TOKEN) as wrong,
    ):
        assert (await anonymous.get("/api/v1/jobs")).status_code == 200
        assert (await anonymous.get("/api/v1/workers")).status_code == 200
        refusal(await anonymous.post("/api/v1/jobs", json=JOB), 401)
        refusal(await anonymous.post("/api/v1/maintenance/cleanup"), 401)
        # A token that is sent must still be a real one.
        refusal(await wrong.get("/api/v1/jobs"), 401)


async def test_a_token_made_in_redis_works_at_once_and_stops_when_revoked(
    redis_url: str, database_url: str, namespace: str
) -> None:
    async with running_stack(
        redis_url, database_url, namespace, with_worker=False, api_tokens=""
    ) as stack:
        names = Names(namespace)
        token, info = await create_token(stack.redis, names, "submit", "ci-bot")
        reader_token, _ = await create_token(stack.redis, names, "read", "dashboard")
        async with stack.client(token) as bot, stack.client(reader_token) as dashboard:
            assert (await bot.post("/api/v1/jobs", json=JOB)).status_code == 202
            assert refusal(await dashboard.post("/api/v1/jobs", json=JOB), 403) == (
                "token 'dashboard' has scope read; POST /api/v1/jobs needs submit"
            )
            assert info.name == "ci-bot"
            assert await revoke_token(stack.redis, names, "ci-bot")
            # No cache: the very next request is refused.
            assert refusal(await bot.post("/api/v1/jobs", json=JOB), 401).startswith(
                "unknown or revoked token"
            )
            assert (await dashboard.get("/api/v1/jobs")).status_code == 200
        # Without BACKFILL_API_TOKENS, the old environment tokens mean nothing.
        refusal(await stack.api.get("/api/v1/jobs"), 401)


async def test_tokens_never_reach_the_logs(
    redis_url: str, database_url: str, namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with running_stack(redis_url, database_url, namespace, with_worker=False) as stack:
        made, _ = await create_token(stack.redis, Names(namespace), "read", "logged")
        for token in (WRONG_TOKEN, READ_TOKEN, SUBMIT_TOKEN, ADMIN_TOKEN, made):
            async with stack.client(token) as client:
                await client.post("/api/v1/maintenance/cleanup")
                await client.post("/api/v1/jobs", json=JOB)
                await client.get("/api/v1/jobs")
    text = caplog.text
    assert "refused POST /api/v1/maintenance/cleanup: an unknown or revoked token" in text
    assert "refused POST /api/v1/jobs: token 'logged' has scope read" in text
    for token in (WRONG_TOKEN, READ_TOKEN, SUBMIT_TOKEN, ADMIN_TOKEN, made):
        assert token not in text
        assert all(token not in str(record.args) for record in caplog.records)


async def test_the_openapi_document_shows_the_lock_and_each_scope(
    redis_url: str, database_url: str, namespace: str
) -> None:
    async with running_stack(redis_url, database_url, namespace, with_worker=False) as stack:
        schema = (await stack.api.get("/openapi.json")).json()
    assert schema["components"]["securitySchemes"]["token"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schema["components"]["securitySchemes"]["token"]["description"],
    }
    submit = schema["paths"]["/api/v1/jobs"]["post"]
    assert submit["security"] == [{"token": []}]
    assert submit["x-backfill-scope"] == "submit"
    assert set(submit["responses"]) >= {"401", "403"}
    health = schema["paths"]["/api/v1/health"]["get"]
    assert "security" not in health
    assert health["x-backfill-scope"] == "none"
    assert schema["paths"]["/api/v1/maintenance/cleanup"]["post"]["x-backfill-scope"] == "admin"
