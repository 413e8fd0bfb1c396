"""No duplicate work between jobs: two jobs needing the same chunk at once make one request.

Requests are counted at the (sim) source, shared by the workers of one test. The leader's lease
and the pointer to its chunk event live in the test's Redis namespace (worker sharing.py).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis

from backfill_bus import Names
from backfill_bus.event_log import Draft, EventLog
from backfill_contracts import BarBatch, ChunkCollected, CollectBars, Outcome
from backfill_sim import SimSource
from backfill_worker import FetchRequest, SourceError
from backfill_worker.sharing import Shared, SharedFetches, SharingSettings, fetch_identity
from backfill_worker.source import Fetched
from tests.support.stack import Stack, running_stack

# Three daily chunks, each slow enough that the second job asks while the first is fetching.
DAYS = {"source": "sim", "bar_size": "1m", "start": "2024-01-02", "end": "2024-01-05"}
SLOW = {"latency_ms": 600}


class CountingSim(SimSource):
    """The sim source, counting the windows it is asked for; `fail_first` fails that many."""

    def __init__(self, fail_first: int = 0) -> None:
        self.windows: list[tuple[str, str]] = []
        self.fail_first = fail_first

    async def fetch(self, request: FetchRequest) -> BarBatch:
        chunk = request.chunk
        self.windows.append((request.job.symbol, chunk.start.date().isoformat()))
        if self.fail_first:
            self.fail_first -= 1
            await asyncio.sleep(0.3)  # long enough for the other job to be following
            raise SourceError(Outcome.UPSTREAM_ERROR, "scripted upstream error")
        return await super().fetch(request)


async def _events(stack: Stack, job_id: str) -> list[dict[str, Any]]:
    response = await stack.api.get(f"/api/v1/jobs/{job_id}/events")
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()
    return events


def _collected(events: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    return {e["data"]["chunk"]: e["data"] for e in events if e["type"] == "chunk.collected"}


async def _bars_of(stack: Stack, symbol: str) -> list[str]:
    response = await stack.api.get(
        "/api/v1/bars",
        params={"source": "sim", "symbol": symbol, "bar_size": "1m", "start": "2024-01-01"},
    )
    assert response.status_code == 200, response.text
    return [bar["ts"] for bar in response.json()["bars"]]


async def _two_jobs_at_once(
    stack: Stack, namespace: str, sim: CountingSim, **job: Any
) -> tuple[list[str], list[dict[str, Any]]]:
    """The same job twice, on two workers at once; their ids and their ends (both succeeded)."""
    for n in (1, 2):
        await stack.start_worker(f"{namespace}w{n}", source=sim)
    ids = list(await asyncio.gather(*(stack.submit(**DAYS, **job) for _ in range(2))))
    ends = [await stack.wait_job(job_id) for job_id in ids]
    assert [end["status"] for end in ends] == ["succeeded", "succeeded"]
    return ids, ends


async def test_two_jobs_on_the_same_chunks_make_one_request_per_chunk(
    redis_url: str, database_url: str, namespace: str
) -> None:
    sim = CountingSim()
    async with running_stack(redis_url, database_url, namespace, with_worker=False) as stack:
        (first, second), jobs = await _two_jobs_at_once(
            stack, namespace, sim, symbol="SHARE", options=SLOW
        )

        # One request per chunk between the two jobs, instead of one per chunk per job.
        assert Counter(sim.windows) == {
            ("SHARE", "2024-01-02"): 1,
            ("SHARE", "2024-01-03"): 1,
            ("SHARE", "2024-01-04"): 1,
        }
        mine, theirs = (
            _collected(await _events(stack, first)),
            _collected(await _events(stack, second)),
        )
        assert sorted(mine) == sorted(theirs) == [0, 1, 2]
        for chunk in range(3):
            # Each chunk was fetched by exactly one of the jobs, and the other says whose it was.
            pair = {mine[chunk]["shared_from"], theirs[chunk]["shared_from"]}
            assert pair in ({None, first}, {None, second}), pair
            assert mine[chunk]["bars"] == theirs[chunk]["bars"] == 390
        assert jobs[0]["progress"]["bars_stored"] == jobs[1]["progress"]["bars_stored"] == 3 * 390
        stamps = await _bars_of(stack, "SHARE")
        assert len(stamps) == len(set(stamps)) == 3 * 390
        # The follower's wait is on its history, with whose fetch it waited for.
        waits = [
            e["data"]
            for job_id in (first, second)
            for e in await _events(stack, job_id)
            if e["type"] == "job.waiting"
        ]
        assert waits
        assert {w["outcome"] for w in waits} == {"in_flight"}
        assert all(f"job {first}" in w["message"] or f"job {second}" in w["message"] for w in waits)
        shared = [
            w.metrics.registry.get_sample_value("backfill_chunks_shared_total", {"source": "sim"})
            for w in stack.workers
        ]
        assert sum(value or 0 for value in shared) == 3


async def test_a_leader_that_fails_hands_the_chunk_to_its_follower(
    redis_url: str, database_url: str, namespace: str
) -> None:
    sim = CountingSim(fail_first=1)
    async with running_stack(redis_url, database_url, namespace, with_worker=False) as stack:
        await _two_jobs_at_once(stack, namespace, sim, symbol="HANDS", options=SLOW)
        # The failed try, then one good request per chunk: the follower fetched the first
        # chunk itself once the leader let go, and the leader's retry took the follower's bars.
        counts = Counter(sim.windows)
        assert counts[("HANDS", "2024-01-02")] == 2
        assert counts[("HANDS", "2024-01-03")] == counts[("HANDS", "2024-01-04")] == 1
        stamps = await _bars_of(stack, "HANDS")
        assert len(stamps) == len(set(stamps)) == 3 * 390


async def test_a_dead_leaders_lease_lapses_and_the_follower_fetches(
    redis_url: str, database_url: str, namespace: str
) -> None:
    """A worker killed mid-fetch leaves its lease unrenewed: the follower waits it out, once."""
    sim = CountingSim()
    body = {**DAYS, "symbol": "GHOST", "options": {}}
    plan = await SimSource().plan(CollectBars(job_id="probe", **body))
    identity = fetch_identity(CollectBars(job_id="probe", **body), plan, plan.chunks[0])
    async with running_stack(redis_url, database_url, namespace, with_worker=False) as stack:
        await stack.start_worker(f"{namespace}w", source=sim, fetch_lease_ms=1500)
        lease = stack.names.source_key("sim", f"fetch:{identity}:lease")
        await stack.redis.set(lease, "killed-job", px=1500)  # what kill -9 leaves behind
        job_id = await stack.submit(**body)
        job = await stack.wait_job(job_id)
        assert job["status"] == "succeeded"
        assert Counter(sim.windows) == {
            ("GHOST", "2024-01-02"): 1,
            ("GHOST", "2024-01-03"): 1,
            ("GHOST", "2024-01-04"): 1,
        }
        events = await _events(stack, job_id)
        kinds = [e["type"] for e in events]
        waited = kinds.index("job.waiting")
        assert waited < kinds.index("chunk.collected")
        assert events[waited]["data"]["chunk"] == 0
        assert "job killed-job has it under way" in events[waited]["data"]["message"]
        assert all(c["shared_from"] is None for c in _collected(events).values())
        assert await stack.redis.exists(lease) == 0


class CancellingSim(SimSource):
    """The sim, its job cancelled as the first chunk's bars come back: the cancel is found by
    the look that goes out with that chunk's event, which also asks for the next chunk's lease."""

    def __init__(self, cancel: Callable[[str], Awaitable[None]]) -> None:
        self.cancel = cancel
        self.windows: list[str] = []

    async def fetch(self, request: FetchRequest) -> BarBatch:
        self.windows.append(request.chunk.start.date().isoformat())
        bars = await super().fetch(request)
        if request.chunk.index == 0:
            await self.cancel(request.job.job_id)
        return bars


async def test_a_job_stopped_at_the_look_before_a_chunk_lets_go_of_its_lease(
    redis_url: str, database_url: str, namespace: str
) -> None:
    """A lease asked for with the previous chunk's event, for a fetch the job will not make,
    is dropped at once: another job needing that chunk must not wait for it to lapse."""
    body = {**DAYS, "symbol": "STOPS", "options": {}}
    plan = await SimSource().plan(CollectBars(job_id="probe", **body))
    identity = fetch_identity(CollectBars(job_id="probe", **body), plan, plan.chunks[1])
    async with running_stack(redis_url, database_url, namespace, with_worker=False) as stack:

        async def cancel(job_id: str) -> None:
            response = await stack.api.post(f"/api/v1/jobs/{job_id}/cancel")
            assert response.json()["status"] == "cancelling", response.text

        sim = CancellingSim(cancel)
        await stack.start_worker(f"{namespace}w", source=sim, fetch_lease_ms=60_000)
        job_id = await stack.submit(**body)
        assert (await stack.wait_job(job_id))["status"] == "cancelled"
        assert sim.windows == ["2024-01-02"]  # the second chunk was never fetched
        assert list(_collected(await _events(stack, job_id))) == [0]
        lease = stack.names.source_key("sim", f"fetch:{identity}:lease")
        assert await stack.redis.exists(lease) == 0


async def test_forced_jobs_fetch_for_themselves(
    redis_url: str, database_url: str, namespace: str
) -> None:
    sim = CountingSim()
    async with running_stack(redis_url, database_url, namespace, with_worker=False) as stack:
        await _two_jobs_at_once(stack, namespace, sim, symbol="FORCE", options=SLOW, force=True)
        assert len(sim.windows) == 6
        assert set(Counter(sim.windows).values()) == {2}


async def test_a_job_fetches_alone_when_redis_is_unreachable() -> None:
    """Sharing saves requests; it never stops a job: no Redis, the job's own fetch goes on."""
    unreachable = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    sharing = SharedFetches(unreachable, Names("t:"), "sim", SharingSettings(lease_ms=500))
    bars = BarBatch(ts=[1_700_000_000], open=[1], high=[1], low=[1], close=[1], volume=[1])

    async def own() -> Fetched:
        return Fetched(bars)

    try:
        shared = await sharing.fetch("identity", "job-1", own)
    finally:
        await unreachable.aclose()
    assert shared.fetched.bars == bars
    assert shared.fetched_by is None


async def _led_and_logged(redis: Redis, names: Names, bars: BarBatch) -> Shared:
    """Job "leader" fetches the chunk and logs it, as the runner does: its event carries the
    pointer."""
    sharing = SharedFetches(redis, names, "sim")

    async def own() -> Fetched:
        return Fetched(bars, exchange_tz="America/New_York")

    led = await sharing.fetch("identity", "leader", own)
    assert led.fetched_by is None
    assert led.pointer is not None
    fields = {
        "chunk": 0,
        "source": "sim",
        "symbol": "PTR",
        "bar_size": "1m",
        "price_type": "trades",
        "bars": bars,
        "exchange_tz": "America/New_York",
    }
    log = EventLog(redis, names, "worker")
    await log.emit_all("leader", 1, [Draft(ChunkCollected, fields, pointer=led.pointer)])
    return led


async def test_a_follower_reads_the_leaders_bars_from_its_event(
    redis: Redis, namespace: str
) -> None:
    names = Names(namespace)
    bars = BarBatch(
        ts=[1_700_000_000, 1_700_000_060],
        open=[1, 2],
        high=[1, 2],
        low=[1, 2],
        close=[1, 2],
        volume=[10, 20],
    )
    led = await _led_and_logged(redis, names, bars)
    assert led.pointer is not None
    assert await redis.exists(led.pointer.lease) == 0  # dropped with the event

    async def never() -> Fetched:
        raise AssertionError("the follower fetched although the leader's bars were logged")

    shared = await SharedFetches(redis, names, "sim").fetch("identity", "follower", never)

    assert shared.fetched_by == "leader"
    assert shared.fetched.bars == bars
    assert shared.fetched.exchange_tz == "America/New_York"
    assert shared.pointer is None  # a follower's event points nowhere


async def test_a_pointer_to_a_trimmed_entry_or_an_old_kept_copy_means_fetching_again(
    redis: Redis, namespace: str
) -> None:
    names = Names(namespace)
    bars = BarBatch(ts=[1_700_000_000], open=[1], high=[1], low=[1], close=[1], volume=[1])
    led = await _led_and_logged(redis, names, bars)
    assert led.pointer is not None
    fetched: list[str] = []

    async def own() -> Fetched:
        fetched.append("again")
        return Fetched(bars)

    await redis.delete(names.events)  # the entry trimmed away
    shared = await SharedFetches(redis, names, "sim").fetch("identity", "late", own)
    assert shared.fetched_by is None
    assert fetched == ["again"]
    assert shared.pointer is not None
    assert shared.pointer.holder == "late"

    # What an older version kept: the bars themselves, not an entry id.
    await redis.set(led.pointer.key, b'{"job_id": "old", "bars": {}}')
    await redis.delete(led.pointer.lease)
    shared = await SharedFetches(redis, names, "sim").fetch("identity", "later", own)
    assert shared.fetched_by is None
    assert fetched == ["again", "again"]
