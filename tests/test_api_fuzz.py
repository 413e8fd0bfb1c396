"""A property-based fuzz of the API from its own OpenAPI document (schemathesis + Hypothesis).

Every operation gets requests that fit the schema and requests that break it, sent with an
admin token to the real app on a real Redis and database. None may answer 5xx, and every 4xx
must say why in a JSON `detail`. Generation is derandomized, so a run is reproducible: the
same document gives the same cases. The number of cases goes to test-artifacts/fuzz-cases.json.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.core.result import Err

from tests.support.stack import ADMIN_TOKEN, Stack, running_stack

MAX_EXAMPLES = 100  # per operation and mode: about a minute per database on 2 cores
REPORT = Path(__file__).resolve().parents[1] / "test-artifacts" / "fuzz-cases.json"
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
JOB = {
    "source": "sim",
    "symbol": "FUZZ",
    "bar_size": "1d",
    "start": "2024-01-01",
    "end": "2024-01-03",
}

Send = Callable[[dict[str, Any]], httpx.Response]


@dataclass
class Tally:
    cases: dict[str, int] = field(default_factory=dict)
    statuses: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


def _problem(response: httpx.Response) -> str | None:
    """What is wrong with this answer: a server error, or a client error that does not say why."""
    if response.status_code >= 500:
        return f"answered {response.status_code}: {response.text[:300]}"
    if response.status_code < 400:
        return None
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        return f"answered {response.status_code} without a JSON object: {response.text[:300]}"
    if not detail or not isinstance(detail, str | list):
        return f"answered {response.status_code} with no useful detail: {response.text[:300]}"
    return None


def _httpx_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """schemathesis serializes a case for `requests`; the same request, for httpx."""
    request: dict[str, Any] = {
        "method": kwargs["method"],
        "url": kwargs["url"],
        "headers": dict(kwargs.get("headers") or {}),
        "params": kwargs.get("params") or None,
    }
    if kwargs.get("cookies"):
        request["headers"]["Cookie"] = "; ".join(f"{k}={v}" for k, v in kwargs["cookies"].items())
    if "json" in kwargs:
        request["json"] = kwargs["json"]
    data = kwargs.get("data")
    if isinstance(data, bytes | str):
        request["content"] = data
    elif data is not None:
        request["data"] = data
    if kwargs.get("files"):
        request["files"] = kwargs["files"]
    return request


def _run(label: str, strategy: Any, send: Send, tally: Tally) -> None:
    """Up to MAX_EXAMPLES cases of one operation and mode; the first problem, shrunk, if any."""

    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case: Any) -> None:
        kwargs = case.as_transport_kwargs(base_url="http://api", headers=AUTH)
        try:
            response = send(_httpx_kwargs(kwargs))
        except (httpx.InvalidURL, httpx.LocalProtocolError, UnicodeEncodeError):
            return  # not sendable by any HTTP client: nothing reached the API
        except Exception as error:  # raised through the ASGI transport: a server would send 500
            curl = case.as_curl_command(headers=AUTH, base_url="http://api")
            raise AssertionError(f"{label} raised {error!r}\n  {curl}") from error
        tally.cases[label] = tally.cases.get(label, 0) + 1
        key = str(response.status_code)
        tally.statuses[key] = tally.statuses.get(key, 0) + 1
        problem = _problem(response)
        if problem is not None:
            curl = case.as_curl_command(headers=AUTH, base_url="http://api")
            raise AssertionError(f"{label} {problem}\n  {curl}")

    try:
        run()
    except AssertionError as error:
        tally.problems.append(str(error)[:1200])
    except Unsatisfiable as error:  # no request of this mode exists (e.g. nothing to break)
        tally.skipped[label] = f"{type(error).__name__}: {str(error)[:200]}"
    except Exception as error:  # e.g. FlakyFailure: a 5xx that did not come back on replay
        tally.problems.append(f"{label} {type(error).__name__}: {str(error)[:1000]}")


def _fuzz(document: dict[str, Any], send: Send, job_ids: list[str]) -> Tally:
    """Run every operation's cases (in this worker thread); what was sent and what went wrong."""
    tally = Tally()
    schema = schemathesis.openapi.from_dict(document)
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            tally.problems.append(f"an operation schemathesis cannot read: {result.err()}")
            continue
        operation = result.ok()
        variants: list[tuple[str, Any]] = [
            ("positive", operation.as_strategy(generation_mode=GenerationMode.POSITIVE)),
            ("negative", operation.as_strategy(generation_mode=GenerationMode.NEGATIVE)),
        ]
        if "{job_id}" in operation.path:
            # Random ids only reach the 404; real ones reach cancel, retry and the views.
            variants.append(
                (
                    "known job",
                    st.sampled_from(job_ids).flatmap(
                        lambda job_id, op=operation: op.as_strategy(  # type: ignore[misc]
                            path_parameters={"job_id": job_id}
                        )
                    ),
                )
            )
        for mode, strategy in variants:
            _run(f"{operation.label} ({mode})", strategy, send, tally)
    return tally


async def _known_jobs(stack: Stack) -> list[str]:
    """A queued job, a cancelled one and a failed one, for the operations that take a job id."""
    queued = await stack.submit(**JOB)
    cancelled = await stack.submit(**{**JOB, "symbol": "FUZZC"})
    failed = await stack.submit(**{**JOB, "symbol": "INVALID"})
    await stack.wait_job(cancelled, {"queued"})
    assert (await stack.api.post(f"/api/v1/jobs/{cancelled}/cancel")).status_code == 202
    await stack.wait_job(queued, {"queued"})
    await stack.wait_job(cancelled, {"cancelled"})
    await stack.start_worker("fuzz-worker")
    await stack.wait_job(failed, {"failed"})
    for worker in stack.workers:  # the queued job stays queued while the fuzz runs
        await worker.stop()
    stack.workers.clear()
    return [queued, cancelled, failed]


@pytest.mark.timeout(900)
# PostgreSQL only, the production database: the same cases on SQLite doubled CI's longest test
# (about 135 s each) for errors that would come from the API's validation, not the database.
@pytest.mark.parametrize(
    "database_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
async def test_no_request_the_schema_allows_or_breaks_gets_a_server_error(
    redis_url: str, database_url: str, namespace: str, report_figure: Callable[[str], None]
) -> None:
    async with running_stack(redis_url, database_url, namespace, with_worker=False) as stack:
        document = (await stack.api.get("/openapi.json")).json()
        job_ids = await _known_jobs(stack)
        loop = asyncio.get_running_loop()

        def send(request: dict[str, Any]) -> httpx.Response:
            call = stack.api.request(**request)
            return asyncio.run_coroutine_threadsafe(call, loop).result(timeout=60)

        started = time.monotonic()
        tally = await asyncio.to_thread(_fuzz, document, send, job_ids)
        elapsed = time.monotonic() - started

    total = sum(tally.cases.values())
    operations = sum(len(ops) for ops in document["paths"].values())
    report = {
        "database": database_url.split(":", 1)[0],
        "operations": operations,
        "max_examples_per_operation_and_mode": MAX_EXAMPLES,
        "cases": total,
        "seconds": round(elapsed, 1),
        "statuses": dict(sorted(tally.statuses.items())),
        "cases_by_operation": tally.cases,
        "problems": tally.problems,
        "skipped": tally.skipped,
    }
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    reports = json.loads(REPORT.read_text()) if REPORT.exists() else {}
    reports[report["database"]] = report
    REPORT.write_text(json.dumps(reports, indent=2) + "\n")
    report_figure(
        f"fuzz ({report['database']}): {total} cases over {operations} operations in"
        f" {elapsed:.0f} s, statuses {report['statuses']}, {len(tally.skipped)} modes passed over,"
        f" {len(tally.problems)} problems"
    )
    assert tally.problems == []
    # Only a mode with nothing to generate may be passed over (a schema with nothing to break).
    assert all(label.endswith("(negative)") for label in tally.skipped), tally.skipped
    # Every operation was reached, and most many times: the fuzz did not pass by sending nothing.
    reached = {label.rsplit(" (", 1)[0] for label in tally.cases}
    assert reached == {
        f"{method.upper()} {path}" for path, ops in document["paths"].items() for method in ops
    }
    assert total >= operations * MAX_EXAMPLES
