"""What each IB error, a silent gateway and a lost connection do to a job.

Every case runs on ib_async and ib_insync. The fake gateway sends IB's own codes and texts.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from backfill_bus import write_gateway_endpoint
from tests.ibkr.conftest import IbkrStack
from tests.support.fake_tws import NO_DATA, NO_PERMISSION, PACING, TOO_LONG, FakeGateway
from tests.support.servers import free_port
from tests.support.stack import wait_until

DAY = {"start": "2024-03-04", "end": "2024-03-05"}
THREE_DAYS = {"start": "2024-03-04", "end": "2024-03-07"}


async def events_of(ibkr: IbkrStack, job_id: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = (
        await ibkr.stack.api.get(f"/api/v1/jobs/{job_id}/events")
    ).json()
    return events


@pytest.mark.parametrize(
    ("code", "text", "outcome", "words"),
    [
        (162, NO_PERMISSION, "no_permission", "No market data permissions"),
        (162, TOO_LONG, "invalid_request", "planning bug"),
        (354, None, "no_permission", "not subscribed"),
        (10197, None, "no_permission", "competing live session"),
        (200, None, "invalid_symbol", "No security definition"),
    ],
)
async def test_permanent_errors_fail_the_job_at_once_in_ibs_words(
    ibkr: IbkrStack, code: int, text: str | None, outcome: str, words: str
) -> None:
    await ibkr.start_worker()
    ibkr.gateway.inject(code, text=text, times=5)
    job = await ibkr.stack.wait_job(await ibkr.submit(**DAY))
    assert job["status"] == "failed"
    assert job["error"]["outcome"] == outcome
    assert words in job["error"]["message"]
    assert f"IB error {code}" in job["error"]["message"]
    historical = [r for r in ibkr.gateway.requests if r.kind == "historical"]
    assert len(historical) == 1  # not retried


async def test_no_data_is_recorded_and_the_job_goes_on(ibkr: IbkrStack) -> None:
    await ibkr.start_worker()
    ibkr.gateway.inject(162, text=NO_DATA, times=1)
    job = await ibkr.stack.wait_job(await ibkr.submit(**THREE_DAYS))
    assert job["status"] == "succeeded"
    chunks = (await ibkr.stack.api.get(f"/api/v1/jobs/{job['job_id']}/chunks")).json()
    assert [c["status"] for c in chunks] == ["no_data", "done", "done"]
    assert job["progress"]["bars_stored"] == 2 * 390


async def test_a_pacing_violation_waits_and_retries_without_using_up_tries(
    ibkr: IbkrStack,
) -> None:
    await ibkr.start_worker(max_chunk_tries=1)
    ibkr.gateway.inject(162, text=PACING, times=2)
    job_id = await ibkr.submit(**DAY)
    job = await ibkr.stack.wait_job(job_id)
    assert job["status"] == "succeeded"
    failures = [e for e in await events_of(ibkr, job_id) if e["type"] == "chunk.failed"]
    assert [(e["data"]["outcome"], e["data"]["will_retry"]) for e in failures] == [
        ("pacing", True), ("pacing", True),
    ]  # fmt: skip


async def test_a_lost_query_is_retried(ibkr: IbkrStack) -> None:
    await ibkr.start_worker()
    ibkr.gateway.inject(366, times=1)
    job_id = await ibkr.submit(**DAY)
    job = await ibkr.stack.wait_job(job_id)
    assert job["status"] == "succeeded"
    failed = [e["data"] for e in await events_of(ibkr, job_id) if e["type"] == "chunk.failed"]
    assert [f["outcome"] for f in failed] == ["upstream_error"]


async def test_321_fails_at_once_instead_of_waiting_for_a_timeout(ibkr: IbkrStack) -> None:
    await ibkr.start_worker(request_timeout_s=30)
    ibkr.gateway.inject(321, times=1)
    began = time.monotonic()
    job = await ibkr.stack.wait_job(await ibkr.submit(**DAY))
    assert job["status"] == "failed"
    assert job["error"]["outcome"] == "invalid_request"
    assert "IB error 321" in job["error"]["message"]
    assert time.monotonic() - began < 5  # not the 30 s request timeout


async def test_a_silent_gateway_is_a_timeout_never_no_data(ibkr: IbkrStack) -> None:
    await ibkr.start_worker(request_timeout_s=0.5)
    ibkr.gateway.hang(times=1)
    job_id = await ibkr.submit(**DAY)
    job = await ibkr.stack.wait_job(job_id)
    assert job["status"] == "succeeded"
    assert job["progress"]["bars_stored"] == 390  # the retry got the bars
    failed = [e["data"] for e in await events_of(ibkr, job_id) if e["type"] == "chunk.failed"]
    assert [(f["outcome"], f["will_retry"]) for f in failed] == [("timeout", True)]


async def test_a_silent_contract_lookup_times_out_then_succeeds(ibkr: IbkrStack) -> None:
    await ibkr.start_worker(ibkr_request_timeout_s=0.3)
    ibkr.gateway.hang(kind="details", times=1)
    ibkr.gateway.hang(kind="head", times=1)
    job = await ibkr.stack.wait_job(await ibkr.submit(**DAY))
    assert job["status"] == "succeeded"
    kinds = [r.kind for r in ibkr.gateway.requests]
    assert kinds[:4] == ["details", "details", "head", "head"]


async def test_a_client_id_in_use_is_skipped(ibkr: IbkrStack) -> None:
    ibkr.gateway.client_ids_in_use.add(10)
    await ibkr.start_worker()
    job = await ibkr.stack.wait_job(await ibkr.submit(**DAY))
    assert job["status"] == "succeeded"
    assert ibkr.gateway.connected_client_ids == {11}


async def test_replicas_lease_distinct_client_ids(ibkr: IbkrStack) -> None:
    for _ in range(3):
        await ibkr.start_worker()

    async def three_connected() -> bool:
        return len(ibkr.gateway.connected_client_ids) == 3

    await wait_until(three_connected, message="three workers connected")
    assert ibkr.gateway.connected_client_ids == {10, 11, 12}


async def wait_note(ibkr: IbkrStack, job_id: str, part: str) -> dict[str, Any]:
    async def noted() -> dict[str, Any] | None:
        job: dict[str, Any] = (await ibkr.stack.api.get(f"/api/v1/jobs/{job_id}")).json()
        return job if part in (job.get("note") or "") else None

    found: dict[str, Any] = await wait_until(noted, message=f"the job's note says {part!r}")
    return found


async def test_connectivity_lost_pauses_the_job_until_ib_is_back_with_its_data(
    ibkr: IbkrStack,
) -> None:
    ibkr.gateway.latency_s = 0.3
    await ibkr.start_worker(request_timeout_s=1)
    job_id = await ibkr.submit(**THREE_DAYS)
    await ibkr.stack.wait_job(job_id, {"running"})
    ibkr.gateway.connectivity_lost()
    job = await wait_note(ibkr, job_id, "1100")
    assert job["status"] == "running"
    time_lost = time.monotonic()
    await wait_until(lambda: _after(time_lost, 2.0), message="a pause longer than the timeout")
    ibkr.gateway.connectivity_restored(data_lost=False)
    done = await ibkr.stack.wait_job(job_id)
    assert done["status"] == "succeeded"
    assert done["progress"]["bars_stored"] == 3 * 390
    types = [e["type"] for e in await events_of(ibkr, job_id)]
    assert "chunk.failed" not in types  # paused, not failed, though it outlasted the timeout
    assert "job.waiting" in types


async def test_connectivity_restored_with_data_lost_fetches_the_chunk_again(
    ibkr: IbkrStack,
) -> None:
    ibkr.gateway.latency_s = 0.5
    await ibkr.start_worker()
    job_id = await ibkr.submit(**DAY)
    await wait_until(lambda: _sent(ibkr.gateway, 1), message="the chunk's request sent")
    ibkr.gateway.connectivity_lost()
    await wait_note(ibkr, job_id, "1100")
    ibkr.gateway.connectivity_restored(data_lost=True)
    job = await ibkr.stack.wait_job(job_id)
    assert job["status"] == "succeeded"
    assert job["progress"]["bars_stored"] == 390
    historical = [r for r in ibkr.gateway.requests if r.kind == "historical"]
    assert len(historical) == 2  # the one in flight at 1101, then again
    assert len({(r.end_datetime, r.duration) for r in historical}) == 1


async def test_a_dead_gateway_pauses_jobs_and_they_finish_when_it_returns(
    ibkr: IbkrStack,
) -> None:
    ibkr.gateway.latency_s = 0.2
    await ibkr.start_worker(request_timeout_s=1)
    job_id = await ibkr.submit(**THREE_DAYS)
    await wait_until(lambda: _sent(ibkr.gateway, 1), message="the first request sent")
    ibkr.gateway.refuse_connections()
    ibkr.gateway.drop_connections()
    job = await wait_note(ibkr, job_id, "waiting for the IB Gateway")
    assert job["status"] == "running"
    went_down = time.monotonic()
    await wait_until(lambda: _after(went_down, 2.5), message="down longer than the timeout")
    ibkr.gateway.accept_connections()
    done = await ibkr.stack.wait_job(job_id, timeout=30)
    assert done["status"] == "succeeded"
    assert done["progress"]["bars_stored"] == 3 * 390
    types = [e["type"] for e in await events_of(ibkr, job_id)]
    assert "job.failed" not in types
    assert "chunk.failed" not in types


async def test_a_new_gateway_endpoint_reaches_the_worker_without_a_restart(
    ibkr: IbkrStack,
) -> None:
    await ibkr.start_worker()
    await wait_until(lambda: _connected(ibkr.gateway), message="connected to the first gateway")
    second = FakeGateway(pacing_scale=ibkr.gateway.pacing_scale)
    second.start()
    try:
        await write_gateway_endpoint(
            ibkr.stack.redis, ibkr.stack.names, "127.0.0.1", second.port, "test"
        )
        await wait_until(lambda: _connected(second), message="moved to the second gateway")
        job = await ibkr.stack.wait_job(await ibkr.submit(**DAY))
        assert job["status"] == "succeeded"
        assert [r.kind for r in second.requests][-1] == "historical"
        assert not [r for r in ibkr.gateway.requests if r.kind == "historical"]
        assert second.violations == []
    finally:
        second.stop()


async def test_workers_together_stay_within_the_pacing_rules_at_full_speed(
    ibkr: IbkrStack,
) -> None:
    for _ in range(2):
        await ibkr.start_worker()
    # 1-second bars: 30 minutes a request; 2 jobs x 13 requests, the same contract.
    jobs = [
        await ibkr.submit(bar_size="1s", start="2024-03-04T14:30", end="2024-03-04T21:00"),
        await ibkr.submit(bar_size="1s", start="2024-03-05T14:30", end="2024-03-05T21:00"),
    ]
    for job_id in jobs:
        job = await ibkr.stack.wait_job(job_id, timeout=60)
        assert job["status"] == "succeeded", job
        assert job["progress"]["bars_stored"] == 390 * 60
    historical = [r for r in ibkr.gateway.requests if r.kind == "historical"]
    assert len(historical) == 26
    assert len({r.client_id for r in historical}) == 2  # both workers took part
    # The gateway fixture fails the test on any violation it saw.


async def _after(moment: float, seconds: float) -> bool:
    return time.monotonic() - moment >= seconds


async def _sent(gateway: FakeGateway, count: int) -> bool:
    return len([r for r in gateway.requests if r.kind == "historical"]) >= count


async def _connected(gateway: FakeGateway) -> bool:
    return bool(gateway.connected_client_ids)


async def test_a_wait_for_pacing_shows_on_the_job_with_the_next_slot(ibkr: IbkrStack) -> None:
    # One request per 200 s of IB time (2 s here): the second chunk waits for the window.
    rules = '[{"name": "login", "window_s": 200, "limit": 1, "scope": "login"}]'
    await ibkr.start_worker(ibkr_pacing_rules=rules)
    job_id = await ibkr.submit(start="2024-03-04", end="2024-03-06")
    job = await wait_note(ibkr, job_id, "waiting for pacing")
    assert job["note"].startswith("waiting for pacing, next slot in ")
    assert job["note"].endswith(" s (login rule)")
    chunks = (await ibkr.stack.api.get(f"/api/v1/jobs/{job_id}/chunks")).json()
    assert [c["status"] for c in chunks] == ["done", "waiting"]
    done = await ibkr.stack.wait_job(job_id)
    assert done["status"] == "succeeded"
    assert done["note"] is None
    historical = sorted(r.time for r in ibkr.gateway.requests if r.kind == "historical")
    assert historical[1] - historical[0] >= 2.0


async def test_a_new_endpoint_ends_a_long_reconnect_wait(ibkr: IbkrStack) -> None:
    """A worker backing off from a dead address moves to the console's endpoint at once."""
    await ibkr.start_worker(ibkr_port=free_port(), ibkr_reconnect_min_s=30, ibkr_reconnect_max_s=60)
    job_id = await ibkr.submit(**DAY)
    await wait_note(ibkr, job_id, "waiting for the IB Gateway")
    await write_gateway_endpoint(
        ibkr.stack.redis, ibkr.stack.names, "127.0.0.1", ibkr.gateway.port, "test"
    )
    moved = time.monotonic()
    job = await ibkr.stack.wait_job(job_id, timeout=20)
    assert job["status"] == "succeeded"
    assert time.monotonic() - moved < 10  # not the 30 s backoff
