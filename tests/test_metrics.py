"""Prometheus metrics of the API, the projector and a worker, scraped over HTTP after real jobs.

The figures are checked against what the job itself reports (its chunks and bars), and the
stream figures against a backlog and a dead letter made on purpose.
"""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from backfill_bus import Names, encode, ensure_command_group, ensure_events_group
from backfill_bus.metrics import MetricsPortInUseError, MetricsServer, new_registry
from backfill_projector.metrics import ProjectorMetrics, metrics_server
from backfill_projector.projector import Projector
from backfill_sim import SimSource
from backfill_worker import Worker, WorkerSettings
from tests.support.events import append, heartbeat, running, wait_projected
from tests.support.stack import Stack, running_stack, wait_until
from tests.test_source_waits import WaitingSim

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
JOB = {"source": "sim", "symbol": "MSFT", "bar_size": "1m", "start": "2024-01-01"}


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


async def scrape(url: str) -> Samples:
    async with httpx.AsyncClient() as client:
        response = await client.get(url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return parse(response.text)


async def scrape_api(stack: Stack) -> Samples:
    response = await stack.api.get("/metrics")
    assert response.status_code == 200, response.text
    return parse(response.text)


async def until_scraped(
    scrape_once: Callable[[], Awaitable[Samples]],
    check: Callable[[Samples], bool],
    message: str,
) -> Samples:
    """Scrape until `check(samples)` holds (scrape-time figures are cached for 2 s)."""

    async def attempt() -> Samples | None:
        samples = await scrape_once()
        return samples if check(samples) else None

    found: Samples = await wait_until(attempt, timeout=20, message=message)
    return found


@asynccontextmanager
async def projector_metrics(stack: Stack) -> AsyncIterator[MetricsServer]:
    """The projector's /metrics as its entry point builds it, on an ephemeral port."""
    server = metrics_server(stack.projector.metrics, stack.redis, stack.names, "127.0.0.1", 0)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_metrics_of_api_projector_and_worker_follow_a_job(
    redis_url: str, database_url: str, namespace: str
) -> None:
    async with (
        running_stack(redis_url, database_url, namespace, with_worker=False) as stack,
        projector_metrics(stack) as projector,
    ):
        commands, dlq = stack.names.command_stream("sim"), stack.names.dlq
        group = {"stream": commands, "group": "sim-workers"}
        # The group exists (a worker ran once) but no worker runs: the job waits, undelivered.
        await ensure_command_group(stack.redis, stack.names, "sim")
        job_id = await stack.submit(**JOB, end="2024-01-06", options={"fail_every": 3})
        before = await until_scraped(
            lambda: scrape_api(stack),
            lambda s: value(s, "backfill_jobs", source="sim", status="queued") == 1,
            "the API counts the queued job",
        )
        assert value(before, "backfill_stream_length", stream=commands) == 1
        assert value(before, "backfill_stream_group_lag", **group) == 1
        assert value(before, "backfill_stream_group_pending", **group) == 0
        assert value(before, "backfill_jobs", source="sim", status="succeeded") == 0

        worker = await stack.start_worker(
            f"{namespace}w",
            source=WaitingSim(wait_s=0.2, waits=2),
            metrics_port=free_port(),
        )
        assert worker.metrics_server is not None
        worker_url = worker.metrics_server.url
        job = await stack.wait_job(job_id)
        assert job["status"] == "succeeded", job
        chunks, bars = job["progress"]["chunks_total"], job["progress"]["bars_stored"]
        failing = chunks // 3  # fail_every=3: every third chunk fails once, then succeeds
        assert chunks >= 3
        assert bars == 5 * 390

        mine = {"source": "sim"}
        seen = await until_scraped(
            lambda: scrape(worker_url),
            lambda s: (
                value(s, "backfill_worker_jobs_finished_total", **mine, status="succeeded") == 1
            ),
            "the worker counts the finished job",
        )
        assert value(seen, "backfill_worker_jobs_started_total", **mine) == 1
        ok = value(seen, "backfill_chunk_duration_seconds_count", **mine, outcome="ok")
        assert ok == chunks
        failed = {"outcome": "upstream_error"}
        assert value(seen, "backfill_chunk_duration_seconds_count", **mine, **failed) == failing
        assert value(seen, "backfill_pacing_wait_seconds_count", **mine, outcome="pacing") == 2
        waited = value(seen, "backfill_pacing_wait_seconds_sum", **mine, outcome="pacing")
        assert waited is not None
        assert 0.4 <= waited < 5
        assert value(seen, "backfill_worker_busy", **mine) == 0

        events_group = {"stream": stack.names.events, "group": "projector"}
        seen = await until_scraped(
            lambda: scrape(projector.url),
            # Caught up: heartbeats keep coming, so a scrape may catch one on its way.
            lambda s: (
                value(s, "backfill_bars_stored_total", source="sim") == bars
                and value(s, "backfill_stream_group_pending", **events_group) == 0
                and value(s, "backfill_stream_group_lag", **events_group) == 0
            ),
            "the projector counts the stored bars, caught up",
        )
        chunk_events = value(seen, "backfill_projector_events_total", type="chunk.collected")
        assert chunk_events == chunks
        assert value(seen, "backfill_projector_batch_seconds_count") is not None
        lagged = value(seen, "backfill_projector_lag_seconds_count")  # heartbeats are events too
        assert lagged is not None
        assert lagged >= chunks

        seen = await until_scraped(
            lambda: scrape_api(stack),
            # Stream figures are read from Redis once a scrape interval: the lag may lag.
            lambda s: (
                value(s, "backfill_jobs", source="sim", status="succeeded") == 1
                and value(s, "backfill_stream_group_lag", **group) == 0
            ),
            "the API counts the succeeded job, its command read",
        )
        assert value(seen, "backfill_jobs", source="sim", status="queued") == 0
        assert value(seen, "backfill_stream_group_pending", **group) == 0
        assert value(seen, "backfill_stream_length", stream=dlq) == 0
        requests = value(
            seen, "backfill_api_requests_total", method="POST", route="/api/v1/jobs", status="202"
        )
        assert requests == 1

        # A malformed entry: dead-lettered by the worker, counted by it, seen on the dlq.
        await stack.redis.xadd(commands, {"__data__": b"not json"})
        seen = await until_scraped(
            lambda: scrape(worker_url),
            lambda s: (
                value(s, "backfill_stream_length", stream=dlq) == 1
                and value(s, "backfill_dead_letters_total", stream=commands) == 1
                and value(s, "backfill_stream_group_pending", **group) == 0
            ),
            "the worker shows and counts the dead letter, acked",
        )
        assert value(seen, "backfill_stream_length", stream=commands) == 2
        seen = await until_scraped(
            lambda: scrape_api(stack),
            lambda s: value(s, "backfill_stream_length", stream=dlq) == 1,
            "the API shows the dead letter",
        )
        assert value(seen, "backfill_stream_length", stream=commands) == 2


async def test_the_projectors_lag_is_each_events_age_on_the_log_when_committed(
    redis: Redis, engine: AsyncEngine, namespace: str
) -> None:
    names = Names(namespace)
    await ensure_events_group(redis, names)
    now = datetime.now(UTC)
    # One entry appended (by its id) a minute ago, one now: a projector catching up folds both.
    minute_ago = int(now.timestamp() * 1000) - 60_000
    await redis.xadd(names.events, encode(heartbeat("w-old", now)), id=f"{minute_ago}-0")
    (last,) = await append(redis, names, [heartbeat("w-new", now)])
    metrics = ProjectorMetrics()
    async with running(Projector(engine, redis, names, block_ms=50, metrics=metrics)):
        await wait_projected(engine, names, last)

    def lag(sample: str, **labels: str) -> float | None:
        return metrics.registry.get_sample_value(f"backfill_projector_lag_seconds_{sample}", labels)

    assert lag("count") == 2
    assert lag("bucket", le="30.0") == 1  # the fresh one, within its batch's commit
    assert lag("bucket", le="300.0") == 2
    total = lag("sum")
    assert total is not None
    assert 60 <= total < 90


async def test_the_projector_counts_what_it_dead_letters(
    redis_url: str, database_url: str, namespace: str
) -> None:
    async with (
        running_stack(redis_url, database_url, namespace, with_worker=False) as stack,
        projector_metrics(stack) as projector,
    ):
        await stack.redis.xadd(stack.names.events, {"__data__": json.dumps({"type": "nope"})})
        seen = await until_scraped(
            lambda: scrape(projector.url),
            lambda s: (
                value(s, "backfill_dead_letters_total", stream=stack.names.events) == 1
                and value(s, "backfill_stream_length", stream=stack.names.dlq) == 1
            ),
            "the projector counts and shows the dead letter",
        )
        assert value(seen, "backfill_projector_events_total", type="nope") is None


async def test_the_metrics_server_answers_only_get_metrics() -> None:
    server = MetricsServer(new_registry(), [], "127.0.0.1", 0)
    await server.start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        async with httpx.AsyncClient(base_url=base) as client:
            assert (await client.get("/metrics")).status_code == 200
            assert "process_" in (await client.get("/metrics")).text
            assert (await client.get("/elsewhere")).status_code == 404
            refused = await client.post("/metrics")
            assert refused.status_code == 405
            assert refused.headers["allow"] == "GET, HEAD"
    finally:
        await server.stop()


async def test_a_taken_metrics_port_is_a_clear_startup_error(
    redis_url: str, namespace: str
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        worker = Worker(
            WorkerSettings(
                redis_url=redis_url, redis_namespace=namespace, worker_id="w", metrics_port=port
            ),
            SimSource(),
        )
        with pytest.raises(MetricsPortInUseError, match=f"127.0.0.1:{port}.*BACKFILL_METRICS_PORT"):
            await worker.start()
        await worker.redis.aclose()
