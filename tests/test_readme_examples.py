"""The README's publishing examples run as written: redis-cli, curl and the Python client.

Each example is a fenced block right after an HTML comment `<!-- example: NAME -->`. The
redis-cli lines run with the real redis-cli against a Redis of their own (they name `cmd.sim`
without a namespace); curl and the Python client run as separate processes against the
stack's API served over HTTP.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.api_server import bearer_token, served_api
from tests.support.servers import RedisServer
from tests.support.stack import Stack, running_stack, wait_until

README = Path(__file__).parent.parent / "README.md"
EXAMPLE = re.compile(r"<!-- example: ([\w-]+) -->\n```(\w+)\n(.*?)\n```", re.DOTALL)
DAYS = 23  # weekdays in January 2024: one daily sim bar each


def examples() -> dict[str, str]:
    found = {name: body for name, _lang, body in EXAMPLE.findall(README.read_text())}
    assert set(found) == {
        "redis-cli",
        "redis-cli-cancel",
        "curl",
        "curl-bars",
        "curl-coverage",
        "python-client",
        "python-client-universe",
    }
    return found


async def run(args: list[str], env: dict[str, str] | None = None) -> str:
    """Run a real process without blocking the loop (the API it calls is served by this loop)."""
    process = await asyncio.create_subprocess_exec(
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, (args[:3], stdout.decode(), stderr.decode())
    return stdout.decode()


async def run_redis_cli(block: str, port: int) -> list[str]:
    """Each line as written, told where the Redis is (`-p`); returns the entry ids it printed."""
    ids = []
    for line in block.splitlines():
        args = shlex.split(line)
        assert args[:2] == ["redis-cli", "XADD"], line
        ids.append((await run([args[0], "-p", str(port), *args[1:]])).strip())
    return ids


@pytest.fixture
def own_redis(tmp_path: Path) -> Any:
    """The examples name `cmd.sim` without a namespace: they get a Redis of their own."""
    if shutil.which("redis-cli") is None:
        pytest.fail("redis-cli is needed (it comes with redis-server / redis-tools)")
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


async def test_the_redis_cli_examples(own_redis: RedisServer, database_url: str) -> None:
    blocks = examples()
    async with running_stack(own_redis.url, database_url, "", with_worker=False) as stack:
        ids = await run_redis_cli(blocks["redis-cli"], own_redis.port)
        await run_redis_cli(blocks["redis-cli-cancel"], own_redis.port)
        await stack.start_worker("readme-worker")

        job = await stack.wait_job("my-job-1")
        assert job["status"] == "succeeded"
        assert job["progress"]["bars_stored"] == DAYS
        events = (await stack.api.get("/api/v1/jobs/my-job-1/events")).json()
        assert events[0]["data"]["correlation_id"] == "nightly-42"

        # The repeat of the idempotency key was not run: it is in the dlq, with the reason.
        async def letters() -> list[Any]:
            entries: Any = await stack.redis.xrange("dlq")
            return list(entries)

        (letter,) = [fields for _, fields in await wait_until(letters, message="a dead letter")]
        assert letter[b"entry_id"].decode() == ids[1]
        assert letter[b"reason"].decode() == (
            "idempotency key 'ibm-2024-01' already names job my-job-1; job my-job-2 was not run"
        )
        assert (await stack.api.get("/api/v1/jobs/my-job-2")).status_code == 404

        # The cancel was published after its job, before any worker ran: it never started.
        cancelled = await stack.wait_job("my-job-3")
        assert cancelled["status"] == "cancelled"
        assert cancelled["error"]["message"] == "no longer needed"
        assert cancelled["progress"]["chunks_done"] == 0


async def http_env(stack: Stack, api_url: str) -> dict[str, str]:
    # Without tokens in the API, any value does: the header is then ignored.
    return {"BACKFILL_API_URL": api_url, "BACKFILL_API_TOKEN": bearer_token(stack) or "unused"}


async def test_the_curl_examples(redis_url: str, database_url: str, namespace: str) -> None:
    if shutil.which("curl") is None:
        pytest.fail("curl is needed for the README's curl examples")
    blocks = examples()
    async with (
        running_stack(redis_url, database_url, namespace) as stack,
        served_api(stack) as api_url,
    ):
        env = await http_env(stack, api_url)
        answer = json.loads(await run(["bash", "-euc", blocks["curl"]], env))
        assert answer["status"] == "queued"
        assert answer["replayed"] is False
        job = await stack.wait_job(answer["job_id"])
        assert job["status"] == "succeeded"
        assert job["progress"]["bars_stored"] == DAYS

        # The same command again is a replay of the same job (the Idempotency-Key header).
        again = json.loads(await run(["bash", "-euc", blocks["curl"]], env))
        assert again == {"job_id": answer["job_id"], "status": "succeeded", "replayed": True}
        events = (await stack.api.get(f"/api/v1/jobs/{answer['job_id']}/events")).json()
        assert events[0]["data"]["correlation_id"] == "nightly-42"

        csv = await run(["bash", "-euc", blocks["curl-bars"]], env)
        lines = csv.splitlines()
        assert lines[0].startswith("ts,open,high,low,close,volume")
        assert len(lines) == DAYS + 1

        coverage = json.loads(await run(["bash", "-euc", blocks["curl-coverage"]], env))
        assert (coverage["count"], coverage["expected"], coverage["held"]) == (DAYS, 44, DAYS)
        assert coverage["gaps"] == [
            {"start": "2024-02-01T00:00:00Z", "end": "2024-03-01T00:00:00Z", "bars": 21,
             "kind": "never_requested"}
        ]  # fmt: skip


async def test_the_python_client_example(redis_url: str, database_url: str, namespace: str) -> None:
    blocks = examples()
    async with (
        running_stack(redis_url, database_url, namespace) as stack,
        served_api(stack) as api_url,
    ):
        env = await http_env(stack, api_url)
        output = (await run([sys.executable, "-c", blocks["python-client"]], env)).splitlines()
        assert output[0] == f"succeeded {DAYS}"
        count, close = output[1].split()
        assert int(count) == DAYS
        assert float(close) > 0
        listed = (await stack.api.get("/api/v1/jobs", params={"symbol": "AAPL"})).json()
        assert [j["status"] for j in listed["jobs"]] == ["succeeded"]


async def test_the_python_client_universe_example(
    redis_url: str, database_url: str, namespace: str
) -> None:
    block = examples()["python-client-universe"]
    async with (
        running_stack(redis_url, database_url, namespace) as stack,
        served_api(stack) as api_url,
    ):
        env = await http_env(stack, api_url)
        output = (await run([sys.executable, "-c", block], env)).splitlines()
        assert output == [f"{{'succeeded': 3}} {3 * DAYS}"]
        again = (await run([sys.executable, "-c", block], env)).splitlines()
        assert again == output  # the same run id: no new job
        runs = (await stack.api.get("/api/v1/universes/megacaps/runs")).json()
        assert [(r["run_id"], r["jobs"]) for r in runs] == [("2024-01", 3)]
