"""`backfill dev`, the README's run command, as a newcomer runs it: real processes end to end."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from redis.asyncio import Redis

from tests.support.fake_yahoo.fake import FakeYahoo
from tests.support.servers import free_port, free_port_run

QUARTER = {"source": "sim", "symbol": "AAPL", "start": "2024-01-01", "end": "2024-04-01"}
README = Path(__file__).parent.parent / "README.md"
QUICK_START = re.compile(
    r"With the stack running, in another terminal:\n\n```bash\n(.*?)\n```", re.S
)


def quick_start(api_port: int) -> tuple[str, str, int]:
    """The README's quick-start curls, pointed at `api_port`: the submit, the bars read, and
    the line count the README promises for it."""
    block = QUICK_START.search(README.read_text())
    assert block is not None, "the README lost its quick start"
    lines = block.group(1).replace("localhost:8000", f"localhost:{api_port}").splitlines()
    queued = next(i for i, line in enumerate(lines) if line.startswith('# {"job_id"'))
    promised = next(i for i, line in enumerate(lines) if re.match(r"# \d+:", line))
    count = int(lines[promised][2:].split(":")[0])
    token = lines[0]  # TOKEN=$(cat .backfill/api-token)
    return "\n".join(lines[:queued]), "\n".join([token, *lines[queued + 1 : promised]]), count


async def bash(script: str, cwd: Path) -> str:
    shell = await asyncio.create_subprocess_exec(
        "bash", "-euo", "pipefail", "-c", script, cwd=cwd,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(shell.communicate(), timeout=60)
    assert shell.returncode == 0, (script, out, err)
    return out.decode()


@asynccontextmanager
async def dev_stack(
    state_dir: Path,
    database_url: str,
    extra_env: dict[str, str] | None = None,
    metrics_base: int | None = None,
    redis_port: int | None = None,
) -> AsyncIterator[httpx.AsyncClient]:
    """Run `backfill dev` until the block ends, then stop it with Ctrl-C (SIGINT).

    The metrics ports start at `metrics_base` (default: four free ports in a row, not the
    fixed 9101, so stacks of concurrent test runs do not collide).
    """
    api_port, ui_port = free_port(), free_port()
    metrics_base = metrics_base or free_port_run(4)
    env = {
        **os.environ,
        "BACKFILL_DEV_REDIS_PORT": str(redis_port or free_port()),
        "BACKFILL_DATABASE_URL": database_url,
        "BACKFILL_HEARTBEAT_INTERVAL_S": "1",
        **(extra_env or {}),
    }
    env.pop("BACKFILL_REDIS_URL", None)  # dev starts its own Redis, as on a fresh machine
    # A newcomer's shell has no PYTEST_CURRENT_TEST; NiceGUI would think it runs under pytest.
    env.pop("PYTEST_CURRENT_TEST", None)
    if database_url.startswith("sqlite"):
        del env["BACKFILL_DATABASE_URL"]  # and its embedded default database
    log_path = state_dir.parent / f"dev-{api_port}.log"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "backfill_cli", "dev", "--state-dir", str(state_dir),
            "--api-port", str(api_port), "--ui-port", str(ui_port),
            "--metrics-port-base", str(metrics_base),
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{api_port}") as client:
            await _wait_ready(client, process, log_path)
            await _wait_console(ui_port, process, log_path)
            # The admin token `backfill dev` made, as a newcomer finds it (README).
            token = (state_dir / "api-token").read_text().strip()
            client.headers["Authorization"] = f"Bearer {token}"
            yield client
    finally:
        if process.returncode is None:  # an early exit is already reported above
            process.send_signal(signal.SIGINT)
        code = await asyncio.wait_for(process.wait(), timeout=30)
        output = await _tail(log_path)
        assert code == 0, output
        assert "Traceback" not in output, output


async def _tail(log: Path) -> str:
    text = await asyncio.to_thread(log.read_text, errors="replace")
    return text[-3000:]


async def _wait_ready(
    client: httpx.AsyncClient, process: asyncio.subprocess.Process, log: Path
) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.returncode is not None:
            raise AssertionError(f"backfill dev exited early:\n{await _tail(log)}")
        try:
            if (await client.get("/api/v1/health")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.2)
    raise AssertionError(f"the API did not become healthy:\n{await _tail(log)}")


async def _wait_console(port: int, process: asyncio.subprocess.Process, log: Path) -> None:
    """The console answers with its login-free Collect page (loopback, no password)."""
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as console:
        while time.monotonic() < deadline:
            if process.returncode is not None:
                raise AssertionError(f"backfill dev exited early:\n{await _tail(log)}")
            try:
                page = await console.get("/")
                if page.status_code == 200 and "Backfill" in page.text:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise AssertionError(f"the console did not answer:\n{await _tail(log)}")


async def _wait_terminal(client: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        response = await client.get(f"/api/v1/jobs/{job_id}")
        if response.status_code == 200 and response.json()["status"] in (
            "succeeded",
            "failed",
            "cancelled",
        ):
            job: dict[str, Any] = response.json()
            return job
        await asyncio.sleep(0.2)
    raise AssertionError(f"job {job_id} did not end")


async def _bar_stamps(client: httpx.AsyncClient, bar_size: str) -> list[str]:
    params = {**QUARTER, "bar_size": bar_size}
    params.pop("symbol")
    body = (await client.get("/api/v1/bars", params={**params, "symbol": "AAPL"})).json()
    return [bar["ts"] for bar in body["bars"]]


async def _scraped(url: str, sample: str, expected: float) -> None:
    """Scrape `url` until `sample` (a whole exposition line's name and labels) has `expected`."""
    last = ""
    deadline = time.monotonic() + 30
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            last = (await client.get(url)).text
            if f"{sample} {float(expected)}" in last.splitlines():
                return
            await asyncio.sleep(0.5)
    raise AssertionError(f"{url} never showed {sample} {expected}:\n{last[-2000:]}")


async def _shows_every_figure(projector: str, worker: str) -> None:
    """The figures the metrics promise, as the local stack serves them (the API's are above).

    Stream figures are read from Redis at most once a scrape interval: each is waited for.
    """
    async with httpx.AsyncClient() as client:
        page = (await client.get(f"{worker}/metrics")).text
    assert "# TYPE backfill_pacing_wait_seconds histogram" in page  # sim never waits: no samples
    expected = [
        # 3 jobs: 65 + 1 + 1 chunks (the quarter's 1m job has a chunk per weekday)
        (worker, 'backfill_chunk_duration_seconds_count{outcome="ok",source="sim"}', 67),
        (worker, 'backfill_stream_length{stream="cmd.sim"}', 4),  # 3 jobs and the malformed one
        (worker, 'backfill_stream_group_pending{group="sim-workers",stream="cmd.sim"}', 0),
        (worker, 'backfill_stream_group_lag{group="sim-workers",stream="cmd.sim"}', 0),
        (worker, 'backfill_stream_length{stream="dlq"}', 1),
        (projector, 'backfill_bars_stored_total{source="sim"}', 25_350 + 65 + 23),
        (projector, 'backfill_stream_group_pending{group="projector",stream="events"}', 0),
        (projector, 'backfill_stream_group_lag{group="projector",stream="events"}', 0),
    ]
    for url, sample, value in expected:
        await _scraped(f"{url}/metrics", sample, value)


async def test_the_readme_run_command_end_to_end(tmp_path: Path, database_url: str) -> None:
    state_dir = tmp_path / ".backfill"  # where ./scripts/dev keeps it, beside the checkout
    metrics, redis_port = free_port_run(4), free_port()
    async with dev_stack(
        state_dir, database_url, metrics_base=metrics, redis_port=redis_port
    ) as api:
        # The README's quick start, as written, from the directory the stack runs in.
        submit, read_bars, promised = quick_start(api.base_url.port or 0)
        minute = json.loads(await bash(submit, tmp_path))
        daily = (await api.post("/api/v1/jobs", json={**QUARTER, "bar_size": "1d"})).json()
        assert minute["status"] == daily["status"] == "queued"
        assert (await _wait_terminal(api, minute["job_id"]))["status"] == "succeeded"
        assert (await _wait_terminal(api, daily["job_id"]))["status"] == "succeeded"
        assert int(await bash(read_bars, tmp_path)) == promised == 25_351
        stamps = await _bar_stamps(api, "1m")
        assert len(stamps) == len(set(stamps)) == 25_350
        assert len(await _bar_stamps(api, "1d")) == 65

        # The CLI's own submit follows a job to its end against the real stack.
        cli = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "backfill_cli", "submit", "MSFT", "--source", "sim",
            "--bar-size", "1d", "--start", "2024-01-01", "--end", "2024-02-01",
            "--api-url", str(api.base_url),
            # As from the directory `backfill dev` ran in: the CLI finds its token file there.
            env={**os.environ, "BACKFILL_STATE_DIR": str(state_dir)},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(cli.communicate(), timeout=60)
        assert cli.returncode == 0, (out, err)
        assert b"succeeded" in out

        workers = (await api.get("/api/v1/stats")).json()
        assert workers["by_status"] == {"succeeded": 3}
        assert workers["bars_stored"] == 25_350 + 65 + 23

        # Each process serves its figures: the projector on the base port, sim-worker next.
        await _scraped(
            f"http://127.0.0.1:{metrics}/metrics",
            'backfill_bars_stored_total{source="sim"}',
            25_350 + 65 + 23,
        )
        await _scraped(
            f"http://127.0.0.1:{metrics + 1}/metrics",
            'backfill_worker_jobs_finished_total{source="sim",status="succeeded"}',
            3,
        )
        await _scraped(
            str(api.base_url.join("/metrics")),
            'backfill_jobs{source="sim",status="succeeded"}',
            3,
        )
        # A malformed command: the sim worker dead-letters it and counts it.
        redis = Redis(port=redis_port)
        await redis.xadd("cmd.sim", {"__data__": "not json"})
        await redis.aclose()
        await _scraped(
            f"http://127.0.0.1:{metrics + 1}/metrics",
            'backfill_dead_letters_total{stream="cmd.sim"}',
            1,
        )
        await _shows_every_figure(f"http://127.0.0.1:{metrics}", f"http://127.0.0.1:{metrics + 1}")

    assert (state_dir / "redis").is_dir()
    assert (state_dir / "backfill.db").exists() == database_url.startswith("sqlite")
    # A restart keeps every job and every bar: Redis replays its AOF, the database persists.
    async with dev_stack(state_dir, database_url) as api:
        jobs = (await api.get("/api/v1/jobs")).json()["jobs"]
        assert sorted(job["status"] for job in jobs) == ["succeeded"] * 3
        assert len(await _bar_stamps(api, "1m")) == 25_350
        again = (await api.post("/api/v1/jobs", json={**QUARTER, "bar_size": "1d"})).json()
        assert (await _wait_terminal(api, again["job_id"]))["status"] == "succeeded"
        assert len(await _bar_stamps(api, "1d")) == 65  # upserted: no duplicates


async def test_the_local_stack_collects_from_yahoo_through_the_settings_alone(
    tmp_path: Path, database_url: str, fake_yahoo: FakeYahoo
) -> None:
    """Only environment variables point the stack's yahoo worker at the fake Yahoo."""
    proxy = {
        "BACKFILL_YAHOO_PROXY_URL": fake_yahoo.proxy_url,
        "BACKFILL_YAHOO_CA_BUNDLE": str(fake_yahoo.ca_bundle),
    }
    today = datetime.now(UTC).date()
    start = datetime(today.year - 1, today.month, 1, tzinfo=UTC)
    end = datetime(today.year, today.month, 1, tzinfo=UTC)
    async with dev_stack(tmp_path / "state", database_url, proxy) as api:
        job = {"source": "yahoo", "symbol": "MSFT", "bar_size": "1d",
               "start": start.isoformat(), "end": end.isoformat()}  # fmt: skip
        accepted = (await api.post("/api/v1/jobs", json=job)).json()
        finished = await _wait_terminal(api, accepted["job_id"])
        assert finished["status"] == "succeeded", finished
        params = {"source": "yahoo", "symbol": "MSFT", "bar_size": "1d"}
        body = (await api.get("/api/v1/bars", params=params)).json()
        assert body["count"] == len(fake_yahoo.expected_bars("MSFT", "1d", start, end)) > 200
    assert len(fake_yahoo.chart_requests("MSFT")) >= 1
