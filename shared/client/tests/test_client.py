"""The client library against the real stack: the API over HTTP (uvicorn), Redis, the projector."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from backfill_client import (
    ApiError,
    AuthError,
    BackfillClient,
    IdempotencyConflict,
    InvalidRequest,
    JobNotFound,
    WaitTimeout,
)
from tests.support.api_server import bearer_token, served_api
from tests.support.stack import running_stack

JOB: dict[str, Any] = {
    "source": "sim",
    "bar_size": "1d",
    "start": "2024-01-01",
    "end": "2024-02-01",
}
DAYS = 23  # weekdays in January 2024: one daily sim bar each


async def test_submit_wait_get_and_bars_through_the_api(
    redis_url: str, database_url: str, namespace: str
) -> None:
    async with (
        running_stack(redis_url, database_url, namespace) as stack,
        served_api(stack) as api_url,
        BackfillClient(api_url, token=bearer_token(stack)) as client,
    ):
        job_id = await client.submit(symbol="CLI1", **JOB, correlation_id="client-corr-1")
        job = await client.wait(job_id, timeout=60)
        assert job.status == "succeeded"
        assert job.finished
        assert job.progress.bars_stored == DAYS
        assert job.symbol == "CLI1"
        assert (await client.get(job_id)).status == "succeeded"

        frame = await client.bars("sim", "CLI1", "1d")
        assert len(frame) == DAYS
        assert list(frame.columns[:5]) == ["open", "high", "low", "close", "volume"]
        assert isinstance(frame.index, pd.DatetimeIndex)
        assert str(frame.index.tz) == "UTC"
        assert frame.index[0] == pd.Timestamp("2024-01-01", tz="UTC")
        assert frame.index.is_monotonic_increasing
        assert {str(frame[c].dtype) for c in ("open", "high", "low", "close")} == {"float64"}
        assert str(frame["volume"].dtype) == "int64"
        assert (frame["high"] >= frame["low"]).all()
        week = await client.bars("sim", "CLI1", "1d", start="2024-01-08", end="2024-01-13")
        assert len(week) == 5
        assert len(await client.bars("sim", "NOSUCH", "1d")) == 0

        events = (await stack.api.get(f"/api/v1/jobs/{job_id}/events")).json()
        assert events[0]["data"]["correlation_id"] == "client-corr-1"


async def test_submit_straight_to_redis_with_an_idempotency_key(
    redis_url: str, database_url: str, namespace: str
) -> None:
    async with (
        running_stack(redis_url, database_url, namespace) as stack,
        served_api(stack) as api_url,
        BackfillClient(
            api_url, token=bearer_token(stack), redis_url=redis_url, namespace=namespace
        ) as client,
    ):
        job_id = await client.submit(symbol="CLI2", **JOB, idempotency_key="batch-7/CLI2")
        again = await client.submit(symbol="CLI2", **JOB, idempotency_key="batch-7/CLI2")
        assert again == job_id
        with pytest.raises(IdempotencyConflict, match="different request"):
            await client.submit(symbol="CLI3", **JOB, idempotency_key="batch-7/CLI2")
        job = await client.wait(job_id, timeout=60)
        assert (job.status, job.progress.bars_stored) == ("succeeded", DAYS)
        published: Any = await stack.redis.xrange(stack.names.command_stream("sim"))
        assert len(published) == 1

        # The API and the Redis path share the keys: the same request through HTTP replays.
        async with BackfillClient(api_url, token=bearer_token(stack)) as over_http:
            assert await over_http.submit(symbol="CLI2", **JOB, idempotency_key="batch-7/CLI2") == (
                job_id
            )
            with pytest.raises(IdempotencyConflict):
                await over_http.submit(symbol="CLI3", **JOB, idempotency_key="batch-7/CLI2")

        with pytest.raises(InvalidRequest) as invalid:
            await client.submit(symbol="BAD SYMBOL", **JOB)
        assert invalid.value.status == 422
        assert "symbol" in str(invalid.value.detail)


async def test_errors_are_typed(redis_url: str, database_url: str, namespace: str) -> None:
    async with (
        running_stack(redis_url, database_url, namespace, with_worker=False) as stack,
        served_api(stack) as api_url,
        BackfillClient(api_url, token=bearer_token(stack)) as client,
    ):
        with pytest.raises(JobNotFound) as missing:
            await client.get("no-such-job")
        assert missing.value.status == 404
        with pytest.raises(InvalidRequest) as invalid:
            await client.submit(symbol="CLI4", **{**JOB, "bar_size": "7m"})
        assert any("bar_size" in reason["loc"] for reason in invalid.value.detail)

        # No worker: the job stays queued, so waiting for it times out and cancelling is instant.
        job_id = await client.submit(symbol="CLI4", **JOB)
        with pytest.raises(WaitTimeout) as timeout:
            await client.wait(job_id, timeout=0.5)
        assert timeout.value.status == "queued"
        assert await client.cancel(job_id) == "cancelled"
        assert (await client.wait(job_id, timeout=30)).status == "cancelled"
        with pytest.raises(ApiError) as ended:
            await client.cancel(job_id)
        assert ended.value.status == 409

        if bearer_token(stack) is not None:  # an API that wants tokens refuses a wrong one
            async with BackfillClient(api_url, token="not-a-real-token-000000") as stranger:
                with pytest.raises(AuthError) as refused:
                    await stranger.submit(symbol="CLI5", **JOB)
                assert refused.value.status in (401, 403)


async def test_modes_through_both_paths(redis_url: str, database_url: str, namespace: str) -> None:
    async with (
        running_stack(redis_url, database_url, namespace) as stack,
        served_api(stack) as api_url,
        BackfillClient(
            api_url, token=bearer_token(stack), redis_url=redis_url, namespace=namespace
        ) as straight,
        BackfillClient(api_url, token=bearer_token(stack)) as over_http,
    ):
        first = await over_http.wait(await over_http.submit(symbol="MODE", **JOB), timeout=60)
        assert first.progress.bars_stored == DAYS
        for client, mode in ((straight, "fill_gaps"), (over_http, "top_up")):
            job = await client.wait(await client.submit(symbol="MODE", **JOB, mode=mode), 60)
            assert (job.status, job.progress.chunks_total) == ("succeeded", 0), mode
        forced = await straight.submit(symbol="MODE", **JOB, mode="fill_gaps", force=True)
        assert (await straight.wait(forced, timeout=60)).progress.chunks_total == 0
        again = await over_http.submit(symbol="MODE", **JOB, force=True)
        assert (await over_http.wait(again, timeout=60)).progress.bars_stored == DAYS
