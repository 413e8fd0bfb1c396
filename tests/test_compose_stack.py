"""compose.yaml run without Docker: every service installed alone, as deploy/Dockerfile does it,
then started with its compose command and environment as a local process, and a sim job run
through that stack end to end.

What stands in for the engine, and only that:
- each image is a clean virtualenv made by the Dockerfile's own build steps, read from it: its
  COPYs into a build folder, then its two `uv sync --locked` runs (third-party packages first,
  then the workspace's), with its ENV (bytecode compiled) and the Python running the tests; so
  a dependency a service forgot to declare, or a stale uv.lock, fails here;
- service hostnames (redis, postgres, ib-gateway) resolve to 127.0.0.1, and Redis and PostgreSQL
  are the test's own servers, with compose's credentials interpolated from test values;
- the ports a service listens on inside its container (8000, 8080, 9100) and the files it
  touches under /tmp become free local ports and per-process paths, in its environment and in
  its healthcheck command alike;
- `--scale sim-worker=3` is three processes with the same environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url

from tests.support.compose import (
    ROOT,
    built_package,
    command_of,
    compose_model,
    dockerfile_build,
    healthcheck_command,
    read_env_file,
    service_environment,
)
from tests.support.databases import asyncpg_dsn, drop_database, execute_sql
from tests.support.servers import RedisServer, free_port, postgres_admin_url, postgres_required

pytestmark = pytest.mark.timeout(600)

# The ports services listen on inside their containers, by the variable that sets each.
LISTEN_PORTS = ("BACKFILL_API_PORT", "BACKFILL_UI_PORT", "BACKFILL_METRICS_PORT")
HOSTS = ("redis", "postgres", "ib-gateway")
SIM_REPLICAS = 3
READY_TIMEOUT_S = 120.0
# Longer than every service's shutdown; compose's stop_grace_period says the same.
STOP_TIMEOUT_S = 20.0


def _uv() -> str:
    found = os.environ.get("UV") or shutil.which("uv")
    for candidate in (found, ROOT / ".tools/uv/bin/uv", ROOT / ".tools/uv-pip/bin/uv"):
        if candidate and Path(candidate).is_file():
            return str(candidate)
    pytest.fail("uv is needed to install the services as the Dockerfile does: run ./scripts/test")


@pytest.fixture(scope="module")
def service_venvs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One clean virtualenv per image, made by replaying the Dockerfile's build stage."""
    model = compose_model({**read_env_file(), **_dummy_secrets()})
    packages = sorted(
        {p for s in model["services"].values() if (p := built_package(s)) is not None}
    )
    root = tmp_path_factory.mktemp("images")
    context = root / "src"  # the build stage's WORKDIR
    context.mkdir()
    venvs = {package: root / package for package in packages}
    image_env, steps = dockerfile_build()
    assert [step.sync[:2] for step in steps] == [["sync", "--locked"]] * 2
    for step in steps:
        for sources, destination in step.copies:
            for source in sources:
                _copy_like_docker(ROOT / source, context / destination)
        for package in packages:
            # uv keeps the caller's index, proxy and certificate settings; nothing of ours leaks in.
            env = {
                **{
                    k: v
                    for k, v in os.environ.items()
                    if not k.startswith(("BACKFILL_", "VIRTUAL_", "UV_PROJECT"))
                },
                **image_env,
                "UV_PROJECT_ENVIRONMENT": str(venvs[package]),
            }
            argv = [part.replace("${PACKAGE}", package) for part in step.sync]
            result = subprocess.run(
                [_uv(), *argv, "--python", sys.executable],
                cwd=context,
                env=env,
                capture_output=True,
                text=True,
                check=False,
                timeout=600,
            )
            assert result.returncode == 0, f"{package}: uv {' '.join(argv)}:\n{result.stderr}"
    return venvs


# Never part of an image: caches a local run leaves in the source folders.
_NOT_COPIED = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", ".mypy_cache")


def _copy_like_docker(source: Path, destination: Path) -> None:
    """`COPY source destination`: a folder's contents into the folder, a file into it."""
    if source.is_dir():
        shutil.copytree(source, destination, ignore=_NOT_COPIED, dirs_exist_ok=True)
    else:
        destination.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, destination / source.name)


def _dummy_secrets() -> dict[str, str]:
    return {
        "POSTGRES_PASSWORD": "unused",
        "BACKFILL_API_TOKENS": "admin:unused",
        "BACKFILL_UI_PASSWORD": "unused",
    }


def _base_env() -> dict[str, str]:
    """What a container has besides its compose environment: a PATH and a HOME, no BACKFILL_."""
    return {
        key: value
        for key, value in os.environ.items()
        if key in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "UV_CACHE_DIR")
    }


def test_every_service_installs_alone_without_the_workspace(service_venvs: dict[str, Path]) -> None:
    """Each image holds its package, its scripts, and not the apps it must not import."""
    apps = {
        "backfill-api": "backfill_api",
        "backfill-projector": "backfill_projector",
        "backfill-sim-worker": "backfill_sim",
        "backfill-yahoo-worker": "backfill_yahoo",
        "backfill-ibkr-worker": "backfill_ibkr",
        "backfill-ui": "backfill_ui",
    }
    assert set(service_venvs) == {"backfill-readmodel", *apps}
    for package, venv in service_venvs.items():
        assert (venv / "bin" / package).is_file(), f"{package} has no `{package}` script"
        for other, module in apps.items():
            probe = subprocess.run(
                [venv / "bin/python", "-c", f"import {module}"],
                capture_output=True,
                env=_base_env(),
                check=False,
            )
            assert (probe.returncode == 0) == (other == package), (
                f"{package}'s image {'lacks' if other == package else 'carries'} {module}"
            )
        # Dev tools stay out of the images.
        assert not (venv / "bin" / "pytest").exists(), f"{package} carries pytest"


@dataclass
class Process:
    name: str
    argv: list[str]
    env: dict[str, str]
    health: list[str] | None
    log_path: Path
    popen: subprocess.Popen[bytes] | None = None
    ports: dict[str, int] = field(default_factory=dict)

    def start(self) -> None:
        log = self.log_path.open("wb")
        self.popen = subprocess.Popen(
            self.argv, env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=self.log_path.parent
        )
        log.close()

    def healthy(self) -> bool:
        if self.health is None:
            return True
        result = subprocess.run(
            self.health, env=self.env, capture_output=True, timeout=15, check=False
        )
        return result.returncode == 0

    def tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace").splitlines()
        return f"--- {self.name} (exit {self.popen and self.popen.poll()}) ---\n" + "\n".join(
            text[-lines:]
        )


def _localize(
    name: str,
    service: dict[str, Any],
    venv: Path,
    workdir: Path,
    redis_port: int,
    postgres_port: int,
) -> Process:
    """The service's compose command and environment, as a process on this machine."""
    env = {**_base_env(), "PYTHONUNBUFFERED": "1"}
    # The Dockerfile's ENV lines: the venv first on PATH, state in the service's own folder.
    env["PATH"] = f"{venv / 'bin'}:{env.get('PATH', '')}"
    env["BACKFILL_STATE_DIR"] = str(workdir / "state")
    env["HOME"] = str(workdir)
    replacements: dict[str, str] = {
        "redis:6379": f"127.0.0.1:{redis_port}",
        "@postgres:5432/": f"@127.0.0.1:{postgres_port}/",
        "/tmp/": f"{workdir}/",
    }
    ports: dict[str, int] = {}
    compose_env = service_environment(service)
    for variable in LISTEN_PORTS:
        if variable in compose_env:
            ports[variable] = free_port()
            replacements[f"127.0.0.1:{compose_env[variable]}/"] = f"127.0.0.1:{ports[variable]}/"
    for key, value in compose_env.items():
        if key in ports:
            value = str(ports[key])
        elif value in HOSTS:
            value = "127.0.0.1"
        for old, new in replacements.items():
            value = value.replace(old, new)
        env[key] = value
    command = command_of(service)
    argv = [str(venv / "bin" / command[0]), *command[1:]]
    health = healthcheck_command(service)
    if health is not None:
        health = [_replace_all(part, replacements) for part in health]
        if health[0] == "python":
            health[0] = str(venv / "bin/python")
    workdir.mkdir(parents=True, exist_ok=True)
    return Process(name, argv, env, health, workdir / "output.log", ports=ports)


def _replace_all(text: str, replacements: dict[str, str]) -> str:
    for old, new in replacements.items():
        text = text.replace(old, new)
    return text


@pytest.fixture
def compose_database() -> Iterator[dict[str, str]]:
    """An empty PostgreSQL database, and the POSTGRES_* values compose reads, pointing at it."""
    admin = postgres_admin_url()
    if admin is None:
        if postgres_required():
            pytest.fail("BACKFILL_TEST_REQUIRE_POSTGRES is set but BACKFILL_TEST_POSTGRES_URL not")
        pytest.skip("compose's stack runs on PostgreSQL: set BACKFILL_TEST_POSTGRES_URL")
    url = make_url(admin)
    name = f"backfill_compose_{secrets.token_hex(6)}"
    dsn = asyncpg_dsn(admin)
    asyncio.run(execute_sql(dsn, f'CREATE DATABASE "{name}"'))
    try:
        yield {
            "POSTGRES_USER": url.username or "",
            "POSTGRES_PASSWORD": url.password or "",
            "POSTGRES_DB": name,
            "port": str(url.port or 5432),
        }
    finally:
        asyncio.run(drop_database(dsn, name))


def test_compose_services_run_a_sim_job_as_local_processes(
    service_venvs: dict[str, Path],
    compose_database: dict[str, str],
    redis_server: RedisServer,
    tmp_path: Path,
) -> None:
    token = secrets.token_urlsafe(24)
    env = {
        **read_env_file(),
        "POSTGRES_USER": compose_database["POSTGRES_USER"],
        "POSTGRES_PASSWORD": compose_database["POSTGRES_PASSWORD"],
        "POSTGRES_DB": compose_database["POSTGRES_DB"],
        "BACKFILL_API_TOKENS": f"admin:{token}",
        "BACKFILL_UI_PASSWORD": secrets.token_urlsafe(12),
    }
    model = compose_model(env)
    # Each test's Redis keys apart from the others': the namespace is a setting of every service.
    namespace = f"compose-{secrets.token_hex(4)}:"
    redis_port = redis_server.port
    processes: dict[str, list[Process]] = {}
    for name, service in model["services"].items():
        package = built_package(service)
        if package is None:
            continue  # redis, postgres, the gateway and monitoring are images we do not build
        replicas = SIM_REPLICAS if name == "sim-worker" else 1
        processes[name] = []
        for replica in range(1, replicas + 1):
            process = _localize(
                name,
                service,
                service_venvs[package],
                tmp_path / f"{name}-{replica}",
                redis_port,
                int(compose_database["port"]),
            )
            process.env["BACKFILL_REDIS_NAMESPACE"] = namespace
            processes[name].append(process)

    migrate = processes.pop("migrate")[0]
    migrate.start()
    assert migrate.popen is not None
    assert migrate.popen.wait(timeout=120) == 0, migrate.tail()

    running = [p for group in processes.values() for p in group]
    try:
        for process in running:
            process.start()
        _wait_until_healthy(running)
        api = processes["api"][0]
        base = f"http://127.0.0.1:{api.ports['BACKFILL_API_PORT']}/api/v1"
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=base, headers=headers, timeout=10) as client:
            _run_sim_jobs(client)
            workers = client.get("/workers").json()
            sim = {w["worker_id"] for w in workers if w["source"] == "sim" and w["alive"]}
            assert len(sim) == SIM_REPLICAS, workers
        ui = processes["ui"][0]
        status = httpx.get(f"http://127.0.0.1:{ui.ports['BACKFILL_UI_PORT']}/status", timeout=5)
        assert status.status_code == 200
    except BaseException:
        print("\n".join(p.tail() for p in [migrate, *running]))
        raise
    finally:
        _stop(running)
    for process in running:
        assert process.popen is not None
        # 0, or uvicorn's way: a clean shutdown, then the SIGTERM raised again (exit 143).
        # A process still up after STOP_TIMEOUT_S was killed (-9), and fails this.
        assert process.popen.returncode in (0, -signal.SIGTERM), process.tail()


def _wait_until_healthy(processes: list[Process]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    waiting = list(processes)
    while waiting:
        for process in waiting:
            assert process.popen is not None
            assert process.popen.poll() is None, f"{process.name} exited:\n{process.tail()}"
        waiting = [p for p in waiting if not p.healthy()]
        if waiting and time.monotonic() > deadline:
            names = ", ".join(p.name for p in waiting)
            raise AssertionError(f"not healthy within {READY_TIMEOUT_S:g} s: {names}")
        if waiting:
            time.sleep(0.5)


def _run_sim_jobs(client: httpx.Client) -> None:
    """Six sim jobs, so the three sim replicas share them; each must end succeeded."""
    job_ids = []
    for number in range(6):
        response = client.post(
            "/jobs",
            json={
                "source": "sim",
                "symbol": f"CMP{number}",
                "bar_size": "1d",
                "start": "2024-01-01",
                "end": "2024-04-01",
            },
        )
        assert response.status_code == 202, response.text
        job_ids.append(response.json()["job_id"])
    deadline = time.monotonic() + 90
    finished: dict[str, dict[str, Any]] = {}
    while len(finished) < len(job_ids):
        assert time.monotonic() < deadline, f"jobs still running: {set(job_ids) - set(finished)}"
        for job_id in job_ids:
            if job_id not in finished:
                response = client.get(f"/jobs/{job_id}")
                if response.status_code == 404:
                    continue  # accepted, not projected yet
                assert response.status_code == 200, response.text
                job = response.json()
                if job["status"] in ("succeeded", "failed", "cancelled"):
                    finished[job_id] = job
        time.sleep(0.2)
    for job in finished.values():
        assert job["status"] == "succeeded", job
        bars = client.get(
            "/bars",
            params={"source": "sim", "symbol": job["symbol"], "bar_size": "1d", "format": "csv"},
        )
        assert bars.status_code == 200, bars.text
        rows = bars.text.strip().splitlines()[1:]
        # Q1 2024 has 65 weekdays; the job's own count must agree with what is stored.
        assert len(rows) == 65 == job["progress"]["bars_stored"]


def _stop(processes: list[Process]) -> None:
    for process in processes:
        if process.popen is not None and process.popen.poll() is None:
            process.popen.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    for process in processes:
        if process.popen is None:
            continue
        try:
            process.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.popen.kill()
            process.popen.wait()
            with contextlib.suppress(OSError), process.log_path.open("a") as log:
                log.write(f"\n[test] killed: no exit within {STOP_TIMEOUT_S:g} s of SIGTERM\n")
