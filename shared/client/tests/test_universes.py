"""The client's universe calls against the real stack: the API over HTTP, Redis, the projector."""

from __future__ import annotations

from typing import Any

import pytest

from backfill_client import (
    BackfillClient,
    InvalidRequest,
    RunWaitTimeout,
    UniverseNotFound,
)
from tests.support.api_server import bearer_token, served_api
from tests.support.stack import running_stack

SERIES: dict[str, Any] = {
    "source": "sim",
    "symbols": ["UNA", "UNB"],
    "bar_sizes": ["1d"],
    "start": "2024-01-01",
    "end": "2024-02-01",
}
DAYS = 23  # weekdays in January 2024: one daily sim bar each


async def test_define_run_and_wait_for_a_universe(
    redis_url: str, database_url: str, namespace: str
) -> None:
    async with (
        running_stack(redis_url, database_url, namespace) as stack,
        served_api(stack) as api_url,
        BackfillClient(api_url, token=bearer_token(stack)) as client,
    ):
        defined = await client.define_universe("pair", **SERIES, description="two of them")
        assert (defined.name, defined.symbols, defined.bar_sizes) == (
            "pair",
            ["UNA", "UNB"],
            ["1d"],
        )
        assert defined.description == "two of them"
        assert [u.name for u in await client.universes()] == ["pair"]
        assert (await client.universe("pair")).start.isoformat() == "2024-01-01T00:00:00+00:00"

        run = await client.run_universe("pair", run_id="jan")
        assert (run.run_id, run.created, run.replayed) == ("jan", 2, 0)
        assert sorted(j.symbol for j in run.jobs) == ["UNA", "UNB"]
        again = await client.run_universe("pair", run_id="jan")  # a retry makes no new job
        assert (again.created, again.replayed) == (0, 2)
        assert {j.job_id for j in again.jobs} == {j.job_id for j in run.jobs}

        done = await client.wait_run("pair", "jan", timeout=60)
        assert done.finished
        assert (done.jobs_total, done.by_status) == (2, {"succeeded": 2})
        assert (done.bars_stored, done.percent) == (2 * DAYS, 100.0)
        assert {(j.symbol, j.universe, j.universe_run) for j in done.jobs} == {
            ("UNA", "pair", "jan"),
            ("UNB", "pair", "jan"),
        }
        assert len(await client.bars("sim", "UNB", "1d")) == DAYS

        # A lone bar size is one size, not its characters; a replaced universe runs anew.
        await client.define_universe("pair", **{**SERIES, "bar_sizes": "1h"})
        assert (await client.universe("pair")).bar_sizes == ["1h"]
        fresh = await client.run_universe("pair", mode="top_up")
        assert (fresh.created, sorted(j.bar_size for j in fresh.jobs)) == (2, ["1h", "1h"])
        runs = await client.runs("pair")
        assert [(r.run_id, r.jobs) for r in runs] == [(fresh.run_id, 2), ("jan", 2)]  # newest first
        assert (await client.wait_run("pair", fresh.run_id, timeout=60)).by_status == {
            "succeeded": 2
        }


async def test_a_run_cancelled_and_the_errors_typed(
    redis_url: str, database_url: str, namespace: str
) -> None:
    async with (
        running_stack(redis_url, database_url, namespace, with_worker=False) as stack,
        served_api(stack) as api_url,
        BackfillClient(api_url, token=bearer_token(stack)) as client,
    ):
        await client.define_universe("idle", **SERIES)
        # No worker: the run's jobs stay queued, so waiting times out and cancelling is instant.
        run = await client.run_universe("idle")
        with pytest.raises(RunWaitTimeout) as waited:
            await client.wait_run("idle", run.run_id, timeout=0.5)
        assert waited.value.by_status == {"queued": 2}
        cancelled = await client.cancel_run("idle", run.run_id)
        assert (cancelled.cancelled, cancelled.cancelling, cancelled.already_ended) == (2, 0, 0)
        ended = await client.wait_run("idle", run.run_id, timeout=30)
        assert ended.by_status == {"cancelled": 2}
        assert (await client.cancel_run("idle", run.run_id)).already_ended == 2

        with pytest.raises(UniverseNotFound) as missing:
            await client.universe("nope")
        assert (missing.value.status, missing.value.name) == (404, "nope")
        for call in (client.run_universe("nope"), client.runs("nope")):
            with pytest.raises(UniverseNotFound):
                await call
        with pytest.raises(UniverseNotFound) as no_run:
            await client.run_progress("idle", "no-such-run")
        assert no_run.value.run_id == "no-such-run"
        with pytest.raises(UniverseNotFound):
            await client.cancel_run("idle", "no-such-run")

        refused = {
            "bad name": ("bad name", SERIES),
            "unknown source": ("u1", {**SERIES, "source": "nowhere"}),
            "end before start": ("u1", {**SERIES, "start": "2024-03-01"}),
            "no symbols": ("u1", {**SERIES, "symbols": []}),
            "bad bar size": ("u1", {**SERIES, "bar_sizes": ["7m"]}),
        }
        for why, (name, fields) in refused.items():
            with pytest.raises(InvalidRequest) as invalid:
                await client.define_universe(name, **fields)
            assert invalid.value.status == 422, why
        assert [u.name for u in await client.universes()] == ["idle"]

        await client.delete_universe("idle")
        assert await client.universes() == []
        with pytest.raises(UniverseNotFound):
            await client.delete_universe("idle")
