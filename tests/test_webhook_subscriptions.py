"""Many webhook subscribers, managed through the API, each served on its own.

The API keeps subscriptions in Redis; the projector's notifier (run here beside the stack) posts
each finished job to every matching one, signed with that one's secret, retried per subscriber,
and records each delivery as its own `job.webhook` event. A secret is never shown again.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from backfill_bus import read_webhooks, signature_matches
from tests.support.http_receiver import HttpReceiver
from tests.support.stack import Stack, wait_until
from tests.support.webhooks import notifier_idle, notifying_stack

JOB = {
    "source": "sim",
    "symbol": "AAPL",
    "bar_size": "1d",
    "start": "2024-01-01",
    "end": "2024-01-10",
}
FAILING_JOB = {**JOB, "symbol": "INVALID"}
GOOD_SECRET = "good-secret-0123456789"
BAD_SECRET = "bad-secret-9876543210"
TRIES = 3


@pytest.fixture
async def stack(redis_url: str, database_url: str, namespace: str) -> AsyncIterator[Stack]:
    async with notifying_stack(redis_url, database_url, namespace, max_tries=TRIES) as stack:
        yield stack


@contextlib.asynccontextmanager
async def receivers(count: int) -> AsyncIterator[list[HttpReceiver]]:
    started = [HttpReceiver() for _ in range(count)]
    try:
        yield started
    finally:
        for receiver in started:
            await receiver.close()


async def subscribe(stack: Stack, **body: Any) -> dict[str, Any]:
    response = await stack.api.post("/api/v1/webhooks", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def webhook_events(stack: Stack, job_id: str) -> list[dict[str, Any]]:
    events = (await stack.api.get(f"/api/v1/jobs/{job_id}/events")).json()
    return [e["data"] for e in events if e["type"] == "job.webhook"]


async def test_webhooks_are_added_listed_read_and_deleted_through_the_api(stack: Stack) -> None:
    created = await subscribe(
        stack,
        url="https://user:pw@hooks.example.com/x?token=abc",
        secret=GOOD_SECRET,
        sources=["sim"],
        statuses=["failed"],
    )
    assert created.pop("created")
    webhook_id = created.pop("id")
    assert created == {
        "url": "https://hooks.example.com/x", "signed": True, "events": ["job.finished"],
        "sources": ["sim"], "statuses": ["failed"], "secret": None,
    }  # fmt: skip
    listed = (await stack.api.get("/api/v1/webhooks")).json()
    assert [w["id"] for w in listed] == [webhook_id]
    one = await stack.api.get(f"/api/v1/webhooks/{webhook_id}")
    assert one.json() == listed[0]
    for response in (listed, one.json()):
        text = json.dumps(response)
        assert GOOD_SECRET not in text
        assert "pw" not in text
        assert "abc" not in text
    # The projector reads the same store, the full URL and secret included.
    (stored,) = await read_webhooks(stack.redis, stack.names)
    assert (stored.id, stored.url, stored.secret) == (
        webhook_id, "https://user:pw@hooks.example.com/x?token=abc", GOOD_SECRET
    )  # fmt: skip

    assert (await stack.api.delete(f"/api/v1/webhooks/{webhook_id}")).status_code == 204
    gone = await stack.api.get(f"/api/v1/webhooks/{webhook_id}")
    assert (gone.status_code, gone.json()) == (404, {"detail": f"no webhook {webhook_id!r}"})
    assert (await stack.api.delete(f"/api/v1/webhooks/{webhook_id}")).status_code == 404
    assert (await stack.api.get("/api/v1/webhooks")).json() == []


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"url": "ftp://nowhere"}, "url", "starts with http:// or https://"),
        ({"url": "https://h.example/a b"}, "url", "no spaces"),
        ({"url": "https://h.example/", "sources": ["nope"]}, "sources", "unknown source"),
        ({"url": "https://h.example/", "statuses": ["running"]}, "statuses", "'succeeded'"),
        ({"url": "https://h.example/", "events": ["job.started"]}, "events", "job.finished"),
        ({"url": "https://h.example/", "events": []}, "events", "at least 1"),
        ({"url": "https://h.example/", "secret": "s" * 501}, "secret", "at most 500"),
        ({"url": "https://h.example/", "colour": "red"}, "colour", "Extra inputs"),
        ({"secret": GOOD_SECRET}, "url", "Field required"),
    ],
)
async def test_a_bad_subscription_is_a_422_that_says_why_and_stores_nothing(
    stack: Stack, body: dict[str, Any], field: str, words: str
) -> None:
    response = await stack.api.post("/api/v1/webhooks", json={"secret": GOOD_SECRET, **body})
    assert response.status_code == 422, response.text
    (problem,) = response.json()["detail"]
    assert problem["loc"][-1] == field or problem["loc"][-2] == field
    assert words in problem["msg"]
    assert GOOD_SECRET not in response.text
    assert await read_webhooks(stack.redis, stack.names) == []


async def test_each_subscriber_is_served_on_its_own_and_a_failing_one_changes_nothing(
    stack: Stack,
) -> None:
    async with receivers(2) as (good, bad):
        bad.statuses = [500] * 100
        good_hook = await subscribe(stack, url=f"{await good.start()}/good", secret=GOOD_SECRET)
        bad_hook = await subscribe(stack, url=f"{await bad.start()}/bad", secret=BAD_SECRET)
        job_id = await stack.submit(**JOB)
        assert (await stack.wait_job(job_id))["status"] == "succeeded"

        recorded = await wait_until(
            lambda: _when(webhook_events(stack, job_id), lambda e: len(e) == 2), message="two"
        )
        # The good one did not wait for the failing one's retries.
        assert [e["subscription_id"] for e in recorded] == [good_hook["id"], bad_hook["id"]]
        assert recorded[0] == {
            "url": f"{good_hook['url']}", "ok": True, "status_code": 200, "tries": 1,
            "message": "", "subscription_id": good_hook["id"],
        }  # fmt: skip
        assert recorded[1] == {
            "url": f"{bad_hook['url']}", "ok": False, "status_code": 500, "tries": TRIES,
            "message": "HTTP 500", "subscription_id": bad_hook["id"],
        }  # fmt: skip
        (hit,) = good.received
        assert signature_matches(GOOD_SECRET, hit.body, hit.headers["x-backfill-signature"])
        assert hit.headers["x-backfill-subscription"] == good_hook["id"]
        assert len(bad.received) == TRIES
        assert all(signature_matches(BAD_SECRET, h.body, h.headers["x-backfill-signature"])
                   for h in bad.received)  # fmt: skip
        assert json.loads(hit.body)["job_id"] == job_id

        job = (await stack.api.get(f"/api/v1/jobs/{job_id}")).json()
        assert (job["status"], job["error"]) == ("succeeded", None)
        history = (await stack.api.get(f"/api/v1/jobs/{job_id}/events")).text
        assert GOOD_SECRET not in history
        assert BAD_SECRET not in history

        # One POST per finished job per subscriber: the next job adds exactly one more.
        second = await stack.submit(**FAILING_JOB)
        assert (await stack.wait_job(second))["status"] == "failed"
        await wait_until(lambda: _when(webhook_events(stack, second), lambda e: len(e) == 2))
        await wait_until(lambda: notifier_idle(stack), message="notifier idle")
        assert [json.loads(h.body)["job_id"] for h in good.received] == [job_id, second]
        assert len(bad.received) == 2 * TRIES


async def test_subscribers_get_only_the_sources_and_statuses_they_asked_for(
    stack: Stack,
) -> None:
    async with receivers(3) as (everything, failures, yahoo):
        everyone = await subscribe(stack, url=await everything.start())
        await subscribe(stack, url=await failures.start(), statuses=["failed", "cancelled"])
        await subscribe(stack, url=await yahoo.start(), sources=["yahoo"])
        ok_job = await stack.submit(**JOB)
        failed_job = await stack.submit(**FAILING_JOB)
        await stack.wait_job(ok_job)
        await stack.wait_job(failed_job)
        await wait_until(lambda: _when(webhook_events(stack, failed_job), lambda e: len(e) == 2))
        await wait_until(lambda: _when(webhook_events(stack, ok_job), lambda e: len(e) == 1))
        await wait_until(lambda: notifier_idle(stack), message="notifier idle")

        def jobs(receiver: HttpReceiver) -> list[str]:
            return sorted(json.loads(hit.body)["job_id"] for hit in receiver.received)

        assert jobs(everything) == sorted([ok_job, failed_job])
        assert jobs(failures) == [failed_job]
        assert jobs(yahoo) == []
        # Made without a secret: the one generated, returned once, signs every POST.
        assert everyone["signed"] is True
        assert len(everyone["secret"]) >= 32
        for hit in everything.received:
            signature = hit.headers["x-backfill-signature"]
            assert signature_matches(everyone["secret"], hit.body, signature)


async def test_the_consoles_old_subscription_is_kept_as_one_more_subscriber(
    stack: Stack,
) -> None:
    async with receivers(1) as (receiver,):
        url = await receiver.start()
        old_key = f"{stack.names.namespace}webhooks:job-finished"
        await stack.redis.set(old_key, json.dumps([{"url": f"{url}/old", "secret": GOOD_SECRET}]))

        (listed,) = (await stack.api.get("/api/v1/webhooks")).json()
        assert (listed["id"], listed["url"], listed["signed"]) == ("console", f"{url}/old", True)
        assert await stack.redis.exists(old_key) == 0  # moved, once

        job_id = await stack.submit(**JOB)
        await stack.wait_job(job_id)
        (recorded,) = await wait_until(lambda: webhook_events(stack, job_id), message="recorded")
        assert (recorded["ok"], recorded["subscription_id"]) == (True, "console")
        (hit,) = receiver.received
        assert signature_matches(GOOD_SECRET, hit.body, hit.headers["x-backfill-signature"])


async def _when(values: Any, check: Any) -> Any:
    found = await values
    return found if check(found) else None
