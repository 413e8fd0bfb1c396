"""Bad input is refused with a reason and creates nothing (real Redis; SQLite and PostgreSQL)."""

from __future__ import annotations

import base64
from typing import Any

import httpx

from tests.support.stack import running_stack

GOOD: dict[str, Any] = {
    "source": "sim",
    "symbol": "AAPL",
    "bar_size": "1m",
    "start": "2024-01-01",
    "end": "2024-01-02",
}
SYMBOL_MSG = "Value error, symbol must be 1 to 32 characters of A-Z a-z 0-9 . ^ = _ -"
RANGE_MSG = "Value error, start must be before end (start is inclusive, end exclusive)"
BAR_SIZES = (
    "'1s', '5s', '10s', '15s', '30s', '1m', '2m', '3m', '5m', '10m', '15m', '20m', '30m', "
    "'1h', '2h', '3h', '4h', '8h', '1d', '1w' or '1mo'"
)


def reasons(response: httpx.Response) -> list[tuple[list[Any], str, str]]:
    assert response.status_code == 422, response.text
    return [(item["loc"], item["msg"], item["type"]) for item in response.json()["detail"]]


def without(key: str) -> dict[str, Any]:
    return {k: v for k, v in GOOD.items() if k != key}


# Each case: the body, and every reason the answer must give (loc, msg, type).
BAD_JOBS: list[tuple[str, dict[str, Any], list[tuple[list[Any], str, str]]]] = [
    (
        "unknown source",
        {**GOOD, "source": "ib"},
        [(["body", "source"],
          "Value error, unknown source 'ib'; known sources: ['ibkr', 'sim', 'yahoo']",
          "value_error")],
    ),
    (
        "unknown bar size",
        {**GOOD, "bar_size": "7m"},
        [(["body", "bar_size"], f"Input should be {BAR_SIZES}", "enum")],
    ),
    ("start after end", {**GOOD, "start": "2024-01-03"}, [(["body"], RANGE_MSG, "value_error")]),
    ("start equals end", {**GOOD, "end": "2024-01-01"}, [(["body"], RANGE_MSG, "value_error")]),
    (
        "same instant in two zones",
        {**GOOD, "start": "2024-01-01T10:00:00+02:00", "end": "2024-01-01T08:00:00Z"},
        [(["body"], RANGE_MSG, "value_error")],
    ),
    (
        "month 13",
        {**GOOD, "start": "2024-13-01"},
        [(["body", "start"], "Input should be a valid datetime or date, month value is outside"
          " expected range of 1-12", "datetime_from_date_parsing")],
    ),
    (
        "a word for a date",
        {**GOOD, "end": "yesterday"},
        [(["body", "end"], "Input should be a valid datetime or date, input is too short",
          "datetime_from_date_parsing")],
    ),
    ("symbol with a space", {**GOOD, "symbol": "AA PL"}, [(["body", "symbol"], SYMBOL_MSG,
                                                           "value_error")]),
    ("33 character symbol", {**GOOD, "symbol": "A" * 33}, [(["body", "symbol"], SYMBOL_MSG,
                                                             "value_error")]),
    ("empty symbol", {**GOOD, "symbol": ""}, [(["body", "symbol"], SYMBOL_MSG, "value_error")]),
    ("symbol injection", {**GOOD, "symbol": "AAPL;DROP"}, [(["body", "symbol"], SYMBOL_MSG,
                                                             "value_error")]),
    (
        "unknown option key",
        {**GOOD, "options": {"fail_evry": 2}},
        [(["body", "options", "fail_evry"], "Extra inputs are not permitted", "extra_forbidden")],
    ),
    (
        "bad option value",
        {**GOOD, "options": {"latency_ms": -5}},
        [(["body", "options", "latency_ms"], "Input should be greater than or equal to 0",
          "greater_than_equal")],
    ),
    (
        "unknown top-level field",
        {**GOOD, "priority": "high"},
        [(["body", "priority"], "Extra inputs are not permitted", "extra_forbidden")],
    ),
    ("missing symbol", without("symbol"), [(["body", "symbol"], "Field required", "missing")]),
    ("missing end", without("end"), [(["body", "end"], "Field required", "missing")]),
    (
        "several problems at once",
        {**without("source"), "symbol": "A B", "bar_size": "1y"},
        [
            (["body", "source"], "Field required", "missing"),
            (["body", "symbol"], SYMBOL_MSG, "value_error"),
            (["body", "bar_size"], f"Input should be {BAR_SIZES}", "enum"),
        ],
    ),
    (
        "symbol not a string",
        {**GOOD, "symbol": 42},
        [(["body", "symbol"], "Input should be a valid string", "string_type")],
    ),
]  # fmt: skip


async def test_bad_jobs_are_refused_and_create_nothing(
    redis_url: str, database_url: str, namespace: str
) -> None:
    async with running_stack(redis_url, database_url, namespace, with_worker=False) as stack:
        for name, body, expected in BAD_JOBS:
            response = await stack.api.post("/api/v1/jobs", json=body)
            assert reasons(response) == expected, name

        not_json = await stack.api.post(
            "/api/v1/jobs",
            content=b'{"source": "sim", ',
            headers={"content-type": "application/json"},
        )
        assert reasons(not_json) == [(["body", 18], "JSON decode error", "json_invalid")]

        not_an_object = await stack.api.post("/api/v1/jobs", json=["sim", "AAPL"])
        [(loc, _msg, kind)] = reasons(not_an_object)
        assert (loc, kind) == (["body"], "model_attributes_type")

        no_body = await stack.api.post("/api/v1/jobs")
        assert reasons(no_body) == [(["body"], "Field required", "missing")]

        huge = await stack.api.post("/api/v1/jobs", json={**GOOD, "symbol": "A" * 1_000_000})
        assert reasons(huge) == [(["body", "symbol"], SYMBOL_MSG, "value_error")]
        assert len(huge.content) < 10_000
        assert "AAAAAAAAAA" not in huge.text

        # Bad input created nothing: no job, no command, no event.
        listing = await stack.api.get("/api/v1/jobs")
        assert listing.status_code == 200
        assert listing.json() == {"jobs": [], "next_cursor": None}
        assert await stack.redis.xlen(f"{namespace}cmd.sim") == 0
        assert await stack.redis.xlen(f"{namespace}events") == 0
        assert (await stack.api.get("/api/v1/stats")).json()["jobs_total"] == 0


async def test_a_huge_unknown_key_is_not_echoed_back(
    redis_url: str, database_url: str, namespace: str
) -> None:
    async with running_stack(redis_url, database_url, namespace, with_worker=False) as stack:
        for body in ({**GOOD, "k" * 1_000_000: 1}, {**GOOD, "options": {"k" * 1_000_000: 1}}):
            response = await stack.api.post("/api/v1/jobs", json=body)
            assert response.status_code == 422
            assert len(response.content) < 10_000
        assert await stack.redis.xlen(f"{namespace}cmd.sim") == 0


async def test_a_symbol_with_a_trailing_newline_is_refused(
    redis_url: str, database_url: str, namespace: str
) -> None:
    async with running_stack(redis_url, database_url, namespace, with_worker=False) as stack:
        response = await stack.api.post("/api/v1/jobs", json={**GOOD, "symbol": "AAPL\n"})
        assert reasons(response) == [(["body", "symbol"], SYMBOL_MSG, "value_error")]
        assert await stack.redis.xlen(f"{namespace}cmd.sim") == 0


async def test_a_cursor_with_a_naive_timestamp_is_refused(
    redis_url: str, database_url: str, namespace: str
) -> None:
    async with running_stack(redis_url, database_url, namespace, with_worker=False) as stack:
        cursor = base64.urlsafe_b64encode(b"2024-01-01T00:00:00|job").decode()
        response = await stack.api.get("/api/v1/jobs", params={"cursor": cursor})
        assert response.status_code == 422
        assert response.json() == {"detail": "cursor is not one this API returned"}


async def test_a_good_job_is_accepted_as_a_control(
    redis_url: str, database_url: str, namespace: str
) -> None:
    """The same stack accepts a well-formed job: the refusals above are about the input."""
    async with running_stack(redis_url, database_url, namespace, with_worker=False) as stack:
        response = await stack.api.post("/api/v1/jobs", json={**GOOD, "symbol": "BRK.B"})
        assert response.status_code == 202
        body = response.json()
        assert body["status"] == "queued"
        assert len(body["job_id"]) == 36
        assert await stack.redis.xlen(f"{namespace}cmd.sim") == 1
        job = await stack.wait_job(body["job_id"], {"queued"}, timeout=30)
        assert (job["symbol"], job["bar_size"], job["status"]) == ("BRK.B", "1m", "queued")
        assert (job["start"], job["end"]) == ("2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z")
        assert job["options"] == {"latency_ms": 0, "fail_every": 0}


async def test_unknown_jobs_and_bad_queries(
    redis_url: str, database_url: str, namespace: str
) -> None:
    async with running_stack(redis_url, database_url, namespace, with_worker=False) as stack:
        api = stack.api

        missing = await api.get("/api/v1/jobs/no-such-job")
        assert missing.status_code == 404
        assert missing.json() == {"detail": "no job no-such-job"}
        for what in ("events", "chunks"):
            response = await api.get(f"/api/v1/jobs/no-such-job/{what}")
            assert response.status_code == 404
            assert response.json() == {"detail": "no job no-such-job"}

        cancel = await api.post("/api/v1/jobs/no-such-job/cancel")
        assert cancel.status_code == 404
        assert cancel.json() == {"detail": "no job no-such-job"}
        assert await stack.redis.xlen(f"{namespace}events") == 0

        for cursor in ("not-a-cursor", "!!!", base64.urlsafe_b64encode(b"no bar here").decode()):
            response = await api.get("/api/v1/jobs", params={"cursor": cursor})
            assert response.status_code == 422, cursor
            assert response.json() == {"detail": "cursor is not one this API returned"}

        too_many = await api.get("/api/v1/jobs", params={"limit": 501})
        assert reasons(too_many) == [
            (["query", "limit"], "Input should be less than or equal to 500", "less_than_equal")
        ]

        bad_size = await api.get(
            "/api/v1/bars", params={"source": "sim", "symbol": "AAPL", "bar_size": "7m"}
        )
        assert reasons(bad_size) == [
            (["query", "bar_size"], f"Input should be {BAR_SIZES}", "enum")
        ]

        no_symbol = await api.get("/api/v1/bars", params={"source": "sim", "bar_size": "1m"})
        assert reasons(no_symbol) == [(["query", "symbol"], "Field required", "missing")]

        bad_format = await api.get(
            "/api/v1/bars",
            params={"source": "sim", "symbol": "AAPL", "bar_size": "1m", "format": "xml"},
        )
        assert reasons(bad_format) == [
            (["query", "format"], "Input should be 'json', 'csv' or 'parquet'", "literal_error")
        ]

        no_bars = await api.get(
            "/api/v1/bars", params={"source": "sim", "symbol": "AAPL", "bar_size": "1m"}
        )
        assert no_bars.status_code == 200
        assert no_bars.json() == {
            "source": "sim",
            "symbol": "AAPL",
            "bar_size": "1m",
            "price_type": "trades",
            "adjust": "none",
            "count": 0,
            "bars": [],
        }


async def test_health_and_docs(redis_url: str, database_url: str, namespace: str) -> None:
    async with running_stack(redis_url, database_url, namespace, with_worker=False) as stack:
        live = await stack.api.get("/api/v1/health/live")
        assert live.status_code == 200
        assert live.json() == {"status": "ok"}

        ready = await stack.api.get("/api/v1/health")
        assert ready.status_code == 200
        assert ready.json() == {"status": "ok", "checks": {"redis": "ok", "database": "ok"}}

        docs = await stack.api.get("/docs")
        assert docs.status_code == 200
        assert docs.headers["content-type"].startswith("text/html")
        assert "/openapi.json" in docs.text

        schema_response = await stack.api.get("/openapi.json")
        assert schema_response.status_code == 200
        schema = schema_response.json()
        assert schema["info"]["title"] == "Backfill"
        assert schema["info"]["version"] == "0.1.0"
        paths = set(schema["paths"])
        assert {
            "/api/v1/jobs",
            "/api/v1/jobs/active",
            "/api/v1/jobs/{job_id}",
            "/api/v1/jobs/{job_id}/events",
            "/api/v1/jobs/{job_id}/chunks",
            "/api/v1/jobs/{job_id}/cancel",
            "/api/v1/bars",
            "/api/v1/stats",
            "/api/v1/health",
            "/api/v1/health/live",
        } <= paths
        job_request = schema["components"]["schemas"]["JobRequest"]
        assert set(job_request["required"]) == {"source", "symbol", "bar_size", "start", "end"}
        assert job_request["additionalProperties"] is False
