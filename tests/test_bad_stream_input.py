"""Entries on a command stream that are not valid commands go to the dlq; the worker goes on."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from backfill_bus.codec import Fields, text
from tests.support.stack import running_stack, wait_until

VALID = {
    "type": "collect_bars",
    "job_id": "raw-job-1",
    "source": "sim",
    "symbol": "IBM",
    "bar_size": "1d",
    "start": "2024-01-01",
    "end": "2024-02-01",
}

JUNK: list[tuple[str, Fields, str]] = [
    ("random bytes", {"__data__": os.urandom(256)}, "Invalid JSON"),
    ("not an object", {"__data__": b"[1, 2, 3]"}, "should be an object"),
    ("unknown type", {"__data__": json.dumps({**VALID, "type": "delete_all"})}, "type"),
    ("missing fields", {"__data__": json.dumps({"type": "collect_bars"})}, "Field required"),
    ("bad bar size", {"__data__": json.dumps({**VALID, "bar_size": "7m"})}, "bar_size"),
    ("end before start", {"__data__": json.dumps({**VALID, "end": "2023-01-01"})}, "start"),
    ("unknown option", {"__data__": json.dumps({**VALID, "options": {"x": 1}})}, "options.x"),
    ("flat fields", {"foo": "bar", "baz": "1"}, "type"),
    ("1 MB of junk", {"__data__": b"\x00junk" * 200_000}, "Invalid JSON"),
    ("wrong source", {"__data__": json.dumps({**VALID, "source": "yahoo"})}, "source"),
]


async def test_junk_goes_to_the_dlq_and_the_worker_keeps_consuming(
    redis_url: str, database_url: str, namespace: str
) -> None:
    async with running_stack(redis_url, database_url, namespace) as stack:
        stream = stack.names.command_stream("sim")
        ids = [text(await stack.redis.xadd(stream, dict(fields))) for _, fields, _ in JUNK]
        # A valid command published with a plain XADD after all the junk still runs.
        await stack.redis.xadd(stream, {"__data__": json.dumps(VALID)})

        job = await stack.wait_job("raw-job-1")
        assert job["status"] == "succeeded"
        assert job["progress"]["bars_stored"] == 23

        async def dead_letters() -> list[Any]:
            entries: Any = await stack.redis.xrange(stack.names.dlq)
            return list(entries) if len(entries) == len(JUNK) else []

        entries = await wait_until(dead_letters, message="every junk entry dead-lettered")
        by_entry = {fields[b"entry_id"].decode(): fields for _, fields in entries}
        assert sorted(by_entry) == sorted(ids)
        for entry_id, (name, fields, reason) in zip(ids, JUNK, strict=True):
            letter = by_entry[entry_id]
            assert letter[b"stream"].decode() == stream, name
            assert reason in letter[b"reason"].decode(), (name, letter[b"reason"][:300])
            original = fields.get("__data__")
            if original is not None:  # nothing is lost: the payload is kept as it came
                expected = original.encode() if isinstance(original, str) else original
                assert letter[b"payload"] == expected, name
        pending: Any = await stack.redis.xpending(stream, "sim-workers")
        assert pending["pending"] == 0  # everything was acked: nothing left to redeliver


async def test_a_raw_command_without_the_api_is_recorded_as_submitted(
    redis_url: str, database_url: str, namespace: str
) -> None:
    """A service that publishes with XADD (no API) still gets a job with its whole history."""
    async with running_stack(redis_url, database_url, namespace) as stack:
        await stack.redis.xadd(stack.names.command_stream("sim"), {"__data__": json.dumps(VALID)})
        job = await stack.wait_job("raw-job-1")
        assert job["status"] == "succeeded"
        assert job["symbol"] == "IBM"
        assert job["options"] == {"latency_ms": 0, "fail_every": 0}
        events = (await stack.api.get("/api/v1/jobs/raw-job-1/events")).json()
        assert [e["type"] for e in events][:2] == ["job.submitted", "job.started"]


@pytest.mark.parametrize("field", ["__data__", "data"])
async def test_legacy_envelope_and_plain_field_forms(
    redis_url: str, database_url: str, namespace: str, field: str
) -> None:
    """FastStream's legacy `{"data": ..., "headers": ...}` envelope is read too."""
    async with running_stack(redis_url, database_url, namespace) as stack:
        body = json.dumps(VALID)
        if field == "data":
            payload = json.dumps({"data": body, "headers": {"correlation_id": "c1"}})
        else:
            payload = body
        await stack.redis.xadd(stack.names.command_stream("sim"), {"__data__": payload})
        assert (await stack.wait_job("raw-job-1"))["status"] == "succeeded"
