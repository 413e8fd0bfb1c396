"""Maintenance: cleanup of old finished jobs (folded in log order), once per period however many
projectors schedule it, trimming that never loses an unprojected event or a pending command,
and the API endpoint and CLI command that ask for a cleanup."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from backfill_bus import EVENTS_GROUP, Names, encode, ensure_command_group, ensure_events_group
from backfill_bus.maintenance import period_of, trim_events
from backfill_cli.main import main as cli_main
from backfill_contracts import CleanupRequested, parse_event
from backfill_projector.maintenance import Maintenance
from backfill_projector.projector import CONSUMER, Projector
from backfill_readmodel.engine import create_engine
from backfill_readmodel.tables import bars, job_chunks, job_events, jobs, projector_positions
from backfill_readmodel.tables import workers as workers_table
from tests.support.events import (
    JobLife,
    all_events,
    append,
    count,
    heartbeat,
    job_life,
    wait_projected,
)
from tests.support.servers import free_port
from tests.support.snapshot import snapshot
from tests.support.stack import ADMIN_TOKEN, TEST_TOKENS, running_stack, wait_until

NOW = datetime(2024, 6, 30, 12, 0, tzinfo=UTC)
CUTOFF = NOW - timedelta(days=7)
HOUR = 3600.0


def _days_ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


async def _project_everything(projector: Projector, last_id: str) -> None:
    """Step the projector (no run loop) until its position is `last_id`."""
    for _ in range(10_000):
        async with projector.engine.connect() as conn:
            query = select(projector_positions.c.last_id)
            if (await conn.execute(query)).scalar_one_or_none() == last_id:
                return
        await projector.step()
    raise AssertionError(f"never reached {last_id}")


async def _cleanup_events(redis: Redis, names: Names) -> list[CleanupRequested]:
    entries: Any = await redis.xrange(names.events)
    events = [parse_event(fields[b"__data__"]) for _, fields in entries]
    return [e for e in events if isinstance(e, CleanupRequested)]


# --- the cleanup as the projector folds it -----------------------------------------------------


def _the_log() -> tuple[list[Any], dict[str, JobLife]]:
    """A log with jobs on both sides of the cutoff, a cleanup, and events after it."""
    lives = {
        "old-ok": job_life("old-ok", _days_ago(10), "succeeded"),
        "old-failed": job_life("old-failed", _days_ago(10), "failed", chunks=2),
        "old-cancelled": job_life("old-cancelled", _days_ago(9), "cancelled"),
        "recent-ok": job_life("recent-ok", _days_ago(1), "succeeded", chunks=1),
        "old-running": job_life("old-running", _days_ago(10), "running", chunks=2),
        "old-queued": job_life("old-queued", _days_ago(10), "queued"),
        # Ended exactly at the cutoff: not before it, so kept.
        "at-cutoff": job_life("at-cutoff", _days_ago(8), "succeeded", finished_at=CUTOFF),
        # Its end is on the log after the cleanup: still running when the cleanup came.
        "ends-later": job_life("ends-later", _days_ago(10), "succeeded", chunks=2),
        "after": job_life("after", NOW, "succeeded", chunks=2),
    }
    ends_later = lives["ends-later"]
    before = all_events(
        *(lives[j] for j in ("old-ok", "old-failed", "old-cancelled", "recent-ok")),
        *(lives[j] for j in ("old-running", "old-queued", "at-cutoff")),
        *ends_later.events[:-1],
        heartbeat("w-old", _days_ago(8)),
        heartbeat("w-edge", CUTOFF),
        heartbeat("w-new", _days_ago(0.1)),
    )
    cleanup = CleanupRequested(finished_before=CUTOFF, requested_by="test", ts=NOW)
    after = [*ends_later.events[-1:], *lives["after"].events]
    return [*before, cleanup, *after], lives


@pytest.mark.parametrize("batch_size", [1, 7, 500])
async def test_cleanup_deletes_exactly_the_old_finished_jobs_and_keeps_bars(
    redis: Redis, engine: AsyncEngine, namespace: str, batch_size: int
) -> None:
    names = Names(namespace)
    await ensure_events_group(redis, names)
    log, lives = _the_log()
    ids = await append(redis, names, log)
    projector = Projector(engine, redis, names, batch_size=batch_size)
    await _project_everything(projector, ids[-1])

    kept = ["after", "at-cutoff", "ends-later", "old-queued", "old-running", "recent-ok"]
    async with engine.connect() as conn:
        rows = (await conn.execute(select(jobs).order_by(jobs.c.job_id))).mappings().all()
        chunk_jobs = (await conn.execute(select(job_chunks.c.job_id))).scalars().all()
        event_jobs = (await conn.execute(select(job_events.c.job_id))).scalars().all()
        worker_ids = (await conn.execute(select(workers_table.c.worker_id))).scalars().all()
    assert [(r["job_id"], r["status"]) for r in rows] == [
        (job_id, lives[job_id].status) for job_id in kept
    ]
    assert [(r["chunks_done"], r["bars_stored"]) for r in rows] == [
        (lives[job_id].chunks, lives[job_id].bars) for job_id in kept
    ]
    assert sorted(chunk_jobs) == sorted(j for j in kept for _ in range(lives[j].chunks))
    assert sorted(event_jobs) == sorted(j for j in kept for _ in lives[j].events)
    assert sorted(worker_ids) == ["w-edge", "w-new"]
    # Every bar stays, those of deleted jobs included: 3x4 + 2x4 + 1x4 + 2x4 + 3x4 + 2x4 + 2x4.
    assert await count(engine, bars) == sum(life.bars for life in lives.values()) == 60


async def test_a_rebuild_or_a_redelivery_after_a_cleanup_gives_identical_tables(
    redis: Redis, engine: AsyncEngine, namespace: str
) -> None:
    names = Names(namespace)
    await ensure_events_group(redis, names)
    log, _ = _the_log()
    ids = await append(redis, names, log)
    projector = Projector(engine, redis, names)
    await _project_everything(projector, ids[-1])
    live = await snapshot(engine)
    assert len(live["jobs"]) == 6

    assert await projector.rebuild(page_size=5) == len(log)
    assert await snapshot(engine) == live

    # The whole log delivered again (as after a crash between commit and ack, or a group
    # reset): the committed position skips it, cleanup included.
    await redis.xgroup_setid(names.events, EVENTS_GROUP, "0")
    restarted = Projector(engine, redis, names)
    assert [await restarted.step(), await restarted.step()] == [0, len(log)]  # pending, then new
    assert await snapshot(engine) == live


async def test_rebuild_keeps_bars_whose_events_were_trimmed(
    redis: Redis, engine: AsyncEngine, namespace: str
) -> None:
    names = Names(namespace)
    await ensure_events_group(redis, names)
    old = job_life("old", _days_ago(10), "succeeded")
    new = job_life("new", _days_ago(1), "succeeded", chunks=2)
    ids = await append(redis, names, [*old.events, *new.events])
    projector = Projector(engine, redis, names)
    await _project_everything(projector, ids[-1])
    # The old job's events go, as trimming would take them once they are old enough.
    await redis.xtrim(names.events, minid=ids[len(old.events)], approximate=False)

    await projector.rebuild()

    assert await count(engine, bars) == old.bars + new.bars == 20
    async with engine.connect() as conn:
        assert (await conn.execute(select(jobs.c.job_id))).scalars().all() == ["new"]


# --- the endpoint and the command ----------------------------------------------------------


async def test_the_cleanup_endpoint_appends_a_request(
    redis_url: str, database_url: str, namespace: str
) -> None:
    async with running_stack(redis_url, database_url, namespace, with_worker=False) as stack:
        before = datetime.now(UTC)
        response = await stack.api.post("/api/v1/maintenance/cleanup")
        after = datetime.now(UTC)
        assert response.status_code == 202, response.text
        default_cutoff = datetime.fromisoformat(response.json()["finished_before"])
        # The deployment's retention (7 days by default) when no days are given.
        assert before - timedelta(days=7) <= default_cutoff <= after - timedelta(days=7)

        response = await stack.api.post("/api/v1/maintenance/cleanup", params={"days": 3})
        assert response.status_code == 202, response.text
        assert list(response.json()) == ["finished_before"]
        cutoff = datetime.fromisoformat(response.json()["finished_before"])

        for bad in ("-1", "1.5", "three", "36501"):
            response = await stack.api.post("/api/v1/maintenance/cleanup", params={"days": bad})
            assert response.status_code == 422, (bad, response.text)
            assert response.json()["detail"][0]["loc"] == ["query", "days"]

        requests = await _cleanup_events(stack.redis, stack.names)
        assert [r.finished_before for r in requests] == [default_cutoff, cutoff]
        assert [r.requested_by for r in requests] == ["api", "api"]
        assert all(r.producer.startswith("api@") for r in requests)
        assert requests[1].ts - requests[1].finished_before == timedelta(days=3)


async def test_a_cleanup_through_the_api_and_a_rebuild_after_it(
    redis_url: str, database_url: str, namespace: str
) -> None:
    job = {"source": "sim", "symbol": "IBM", "bar_size": "1m"}
    async with running_stack(redis_url, database_url, namespace) as stack:
        first = await stack.submit(**job, start="2024-03-04", end="2024-03-06")
        second = await stack.submit(**job, start="2024-03-06", end="2024-03-07")
        for job_id in (first, second):
            assert (await stack.wait_job(job_id))["status"] == "succeeded"
        for worker in stack.workers:  # the log stays still: no more heartbeats
            await worker.stop()
        stack.workers.clear()

        response = await stack.api.post("/api/v1/maintenance/cleanup", params={"days": 0})
        assert response.status_code == 202, response.text
        newest: Any = await stack.redis.xrevrange(stack.names.events, count=1)
        await wait_projected(stack.engine, stack.names, newest[0][0].decode())

        for job_id in (first, second):
            assert (await stack.api.get(f"/api/v1/jobs/{job_id}")).status_code == 404
        cleaned = await snapshot(stack.engine)
        assert [len(cleaned[t]) for t in ("jobs", "job_chunks", "job_events", "workers")] == [
            0,
            0,
            0,
            0,
        ]
        assert len(cleaned["bars"]) == 3 * 390
        bars_response = await stack.api.get(
            "/api/v1/bars", params={"source": "sim", "symbol": "IBM", "bar_size": "1m"}
        )
        assert bars_response.json()["count"] == 3 * 390

        await stack.projector.rebuild()
        assert await snapshot(stack.engine) == cleaned


@pytest.fixture
async def api_server(redis_url: str, database_url: str, namespace: str) -> AsyncIterator[str]:
    """The real API as its own process (uvicorn), for the synchronous CLI to talk to."""
    port = free_port()
    env = {
        **os.environ,
        "BACKFILL_REDIS_URL": redis_url,
        "BACKFILL_REDIS_NAMESPACE": namespace,
        "BACKFILL_DATABASE_URL": database_url,
        "BACKFILL_API_PORT": str(port),
        "BACKFILL_JOB_RETENTION_DAYS": "12",
        "BACKFILL_API_TOKENS": TEST_TOKENS,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "backfill_api",
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url) as client:

            async def live() -> bool:
                try:
                    return (await client.get("/api/v1/health/live")).status_code == 200
                except httpx.TransportError:
                    return False

            await wait_until(live, 30, "the API answers")
        yield url
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), timeout=15)


async def test_the_cleanup_command(
    api_server: str,
    redis: Redis,
    namespace: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    names = Names(namespace)
    monkeypatch.setenv("BACKFILL_API_TOKEN", ADMIN_TOKEN)  # cleanup needs the admin scope
    code = await asyncio.to_thread(cli_main, ["cleanup", "--days", "2", "--api-url", api_server])
    out, err = capsys.readouterr()
    assert code == 0, err
    code = await asyncio.to_thread(cli_main, ["cleanup", "--api-url", api_server])
    out_default, err = capsys.readouterr()
    assert code == 0, err

    requests = await _cleanup_events(redis, names)
    assert len(requests) == 2
    assert requests[0].ts - requests[0].finished_before == timedelta(days=2)
    assert requests[1].ts - requests[1].finished_before == timedelta(days=12)
    cutoff = requests[0].finished_before.isoformat().replace("+00:00", "Z")
    assert out.splitlines()[0].startswith(
        f"cleanup requested (--days 2): finished jobs that ended before {cutoff} ("
    )
    assert out.splitlines()[1] == (
        "bars are kept; the projector deletes when it reaches the request on the event log"
    )
    assert "(the API's default retention)" in out_default

    with pytest.raises(SystemExit) as exited:  # refused by the CLI itself
        await asyncio.to_thread(cli_main, ["cleanup", "--days", "-1", "--api-url", api_server])
    assert exited.value.code == 2
    assert "argument --days: must be 0 or more: -1" in capsys.readouterr().err
    # Refused by the API: the reasons come back, nothing is requested.
    argv = ["cleanup", "--days", "36501", "--api-url", api_server]
    assert await asyncio.to_thread(cli_main, argv) == 2
    assert capsys.readouterr().err == (
        "backfill: the API refused the request:\n"
        "  - days: Input should be less than or equal to 36500\n"
    )
    assert len(await _cleanup_events(redis, names)) == 2


# --- once per period -----------------------------------------------------------------------


def _scheduler(engine: AsyncEngine, redis: Redis, names: Names, i: int, **kw: Any) -> Maintenance:
    return Maintenance(engine, redis, names, producer=f"projector-{i}", **kw)


async def test_five_schedulers_append_one_cleanup_per_period(
    redis_url: str, engine: AsyncEngine, namespace: str
) -> None:
    names = Names(namespace)
    clients = [Redis.from_url(redis_url) for _ in range(5)]
    try:
        schedulers = [
            _scheduler(engine, client, names, i, interval_s=HOUR)
            for i, client in enumerate(clients)
        ]

        async def all_at(moment: datetime) -> list[CleanupRequested | None]:
            runs = await asyncio.gather(*(s.run_once(moment) for s in schedulers))
            return [run.cleanup for run in runs]

        first = await all_at(NOW)
        assert sum(c is not None for c in first) == 1
        assert await all_at(NOW + timedelta(minutes=59)) == [None] * 5  # the same period
        # Down for three periods: caught up once, not three times.
        later = await all_at(NOW + timedelta(hours=4))
        assert sum(c is not None for c in later) == 1

        requests = await _cleanup_events(clients[0], names)
        assert [r.finished_before for r in requests] == [
            NOW - timedelta(days=7),
            NOW + timedelta(hours=4) - timedelta(days=7),
        ]
        assert [r.requested_by for r in requests] == ["schedule", "schedule"]
        assert requests == [c for c in [*first, *later] if c is not None]
    finally:
        for client in clients:
            await client.aclose()


async def test_five_scheduler_processes_on_one_period(
    redis_url: str, database_url: str, namespace: str, tmp_path: Path
) -> None:
    """Five real `backfill-projector run` processes, started together: one request."""
    env = {
        **os.environ,
        "BACKFILL_REDIS_URL": redis_url,
        "BACKFILL_REDIS_NAMESPACE": namespace,
        "BACKFILL_DATABASE_URL": database_url,
        # A period far longer than the test: every process's first run falls in the same one.
        "BACKFILL_CLEANUP_INTERVAL_S": str(10 * 365 * 86400),
    }
    started = datetime.now(UTC)
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "backfill_projector",
            "run",
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=(tmp_path / f"p{i}.log").open("wb"),
        )
        for i in range(5)
    ]
    redis = Redis.from_url(redis_url)
    names = Names(namespace)
    try:

        async def each_ran() -> bool:
            logs = [(tmp_path / f"p{i}.log").read_text() for i in range(5)]
            return all("maintenance period" in text for text in logs)

        # Each process's first run is at start, not a period (ten years) later.
        await wait_until(each_ran, 60, "five projectors ran their maintenance")
        requests = await _cleanup_events(redis, names)
        assert len(requests) == 1
        request = requests[0]
        assert request.requested_by == "schedule"
        assert request.producer.startswith("projector@")
        assert started - timedelta(days=7) <= request.finished_before
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            assert await asyncio.wait_for(process.wait(), timeout=15) == 0
        await redis.aclose()


async def test_the_schedule_runs_at_start_and_each_period(
    redis_url: str, engine: AsyncEngine, namespace: str
) -> None:
    names = Names(namespace)
    clients = [Redis.from_url(redis_url) for _ in range(3)]
    stop = asyncio.Event()
    started = datetime.now(UTC)
    schedulers = [
        _scheduler(engine, client, names, i, interval_s=1.0, job_retention_days=0)
        for i, client in enumerate(clients)
    ]
    tasks = [asyncio.create_task(s.run(stop)) for s in schedulers]
    try:

        async def three() -> bool:
            return len(await _cleanup_events(clients[0], names)) >= 3

        await wait_until(three, 10, "three periods of cleanup")
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=10)
        for client in clients:
            await client.aclose()
    redis = Redis.from_url(redis_url)
    try:
        requests = await _cleanup_events(redis, names)
    finally:
        await redis.aclose()
    periods = [period_of(r.finished_before, 1.0) for r in requests]
    assert len(periods) >= 3
    assert periods == sorted(set(periods))  # one request per period, in order
    assert periods[0] in (period_of(started, 1.0), period_of(started, 1.0) + 1)


# --- trimming ----------------------------------------------------------------------------------


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


async def _add_at(redis: Redis, stream: str, moments: list[datetime], event: Any) -> list[str]:
    ids = []
    for i, moment in enumerate(moments):
        entry_id = f"{_ms(moment)}-{i}"
        await redis.xadd(stream, encode(event), id=entry_id)
        ids.append(entry_id)
    return ids


async def _ids(redis: Redis, stream: str) -> list[str]:
    entries: Any = await redis.xrange(stream)
    return [entry_id.decode() for entry_id, _ in entries]


async def test_trimming_events_never_passes_the_projector_position(
    redis: Redis, engine: AsyncEngine, namespace: str
) -> None:
    names = Names(namespace)
    await ensure_events_group(redis, names)
    moments = [_days_ago(10)] * 3 + [_days_ago(8)] * 2 + [_days_ago(1)] * 2
    ids = await _add_at(redis, names.events, moments, heartbeat("w-1", _days_ago(10)))
    dlq = await _add_at(redis, names.dlq, [_days_ago(30)] * 2, heartbeat("w-2", _days_ago(30)))
    maintenance = _scheduler(engine, redis, names, 0, interval_s=HOUR)
    projector = Projector(engine, redis, names)

    # Nothing projected yet: nothing trimmed, however old.
    run = await maintenance.run_once(NOW)
    assert run.events_trimmed == 0
    assert run.cleanup is not None  # this period's request, appended now (a newer id)
    all_ids = await _ids(redis, names.events)
    assert all_ids[:7] == ids
    assert len(all_ids) == 8

    # Projected up to the second entry: the first goes, the position entry stays.
    async with engine.begin() as conn:
        entries: Any = await redis.xrange(names.events, max=ids[1])
        await projector.apply(conn, entries, dead_letter_invalid=False)
    assert (await maintenance.run_once(NOW)).events_trimmed == 1
    assert await _ids(redis, names.events) == all_ids[1:]

    # Read by the projector's group and committed, but not acked (a crash before XACK, or a
    # commit not yet known to be on disk): pending entries are kept.
    read: Any = await redis.xreadgroup(EVENTS_GROUP, CONSUMER, {names.events: ">"})
    async with engine.begin() as conn:
        await projector.apply(conn, read[0][1], dead_letter_invalid=False)
    run = await maintenance.run_once(NOW)
    assert run.cleanup is None  # the same period
    assert run.events_trimmed == 0
    assert await _ids(redis, names.events) == all_ids[1:]

    before = await snapshot(engine)
    restarted = Projector(engine, redis, names)
    assert await restarted.step() == 7  # the pending entries, already folded: acked
    assert (await redis.xpending(names.events, EVENTS_GROUP))["pending"] == 0
    assert await snapshot(engine) == before
    run = await maintenance.run_once(NOW)
    assert run.events_trimmed == 4  # older than 7 days; the newer ones stay
    assert await _ids(redis, names.events) == all_ids[5:]
    assert await redis.xrange(names.dlq) != []
    assert await _ids(redis, names.dlq) == dlq  # never trimmed


async def test_trimming_events_keeps_them_all_while_the_projector_has_no_group(
    redis: Redis, namespace: str
) -> None:
    """A Redis that came back without the projector's group: which entries it acked is not
    known, so none goes until the projector has read the log again."""
    names = Names(namespace)
    ids = await _add_at(redis, names.events, [_days_ago(10)] * 2, heartbeat("w-1", NOW))

    assert await trim_events(redis, names, older_than=_days_ago(7), projected=ids[1]) == 0
    assert await _ids(redis, names.events) == ids


async def test_trimming_commands_never_trims_a_pending_one(
    redis: Redis, engine: AsyncEngine, namespace: str
) -> None:
    names = Names(namespace)
    stream, group = names.command_stream("sim"), names.command_group("sim")
    await ensure_command_group(redis, names, "sim")
    moments = [_days_ago(10) + timedelta(seconds=i) for i in range(6)]
    command = heartbeat("w-1", NOW)  # the body does not matter to trimming
    ids = await _add_at(redis, stream, moments, command)
    await redis.xreadgroup(group, "worker-1", {stream: ">"}, count=4)  # 0..3 delivered
    await redis.xack(stream, group, ids[0], ids[2])  # 1 and 3 still pending; 4, 5 never read
    maintenance = _scheduler(engine, redis, names, 0, interval_s=HOUR)

    async def trim() -> int:
        return (await maintenance.run_once(NOW)).commands_trimmed["sim"]

    assert await trim() == 1
    assert await _ids(redis, stream) == ids[1:]
    await redis.xack(stream, group, ids[1])
    assert await trim() == 2  # 1 and 2 were acked; 3 is pending
    assert await _ids(redis, stream) == ids[3:]
    await redis.xack(stream, group, ids[3])
    assert await trim() == 1  # 4 and 5 were never delivered: kept
    assert await _ids(redis, stream) == ids[4:]
    assert await trim() == 0

    # Acked, but younger than the retention: kept.
    await redis.xreadgroup(group, "worker-1", {stream: ">"})
    await redis.xack(stream, group, ids[4], ids[5])
    run = await maintenance.run_once(moments[5] + timedelta(days=7))
    assert run.commands_trimmed["sim"] == 1
    assert await _ids(redis, stream) == ids[5:]


async def test_a_scheduler_on_an_empty_deployment(
    redis: Redis, database_url: str, namespace: str
) -> None:
    """No streams, no projection yet: the first run requests a cleanup and trims nothing."""
    engine = create_engine(database_url)
    try:
        run = await _scheduler(engine, redis, Names(namespace), 0, interval_s=HOUR).run_once(NOW)
    finally:
        await engine.dispose()
    assert run.cleanup is not None
    assert run.events_trimmed == 0
    assert run.commands_trimmed == {"ibkr": 0, "sim": 0, "yahoo": 0}
