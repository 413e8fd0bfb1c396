"""`backfill dev` end to end: a real Redis, then stand-in migration and services."""

from __future__ import annotations

import os
import re
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from backfill_cli.ports import port_in_use

# dev.run with stand-ins for the migration and the services, in a process of its own so it can
# be signalled. Each stand-in service pings the Redis it is given and prints what it was told.
DEV = """
import sys
from backfill_cli import dev
from backfill_cli.settings import stack_settings
from backfill_cli.supervisor import ServiceSpec

state, api_port, migrate_code = sys.argv[1], int(sys.argv[2]), sys.argv[3]
service = '''
import os, socket, time
from urllib.parse import urlsplit
url = urlsplit(os.environ["BACKFILL_REDIS_URL"])
with socket.create_connection((url.hostname, url.port)) as s:
    s.sendall(b"PING\\\\r\\\\n")
    reply = s.recv(64).decode().strip()
keys = ("BACKFILL_REDIS_URL", "BACKFILL_DATABASE_URL", "BACKFILL_STATE_DIR", "BACKFILL_API_PORT")
print("redis says", reply, *(os.environ[k] for k in keys), flush=True)
time.sleep(60)
'''
services = [ServiceSpec(name, [sys.executable, "-c", service]) for name in ("projector", "api")]
migration = ServiceSpec("migrate", [sys.executable, "-c", migrate_code])
sys.exit(dev.run(stack_settings(state, api_port), migration=migration, services=services))
"""


def _env(redis_port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKFILL_")}
    return {**env, "BACKFILL_DEV_REDIS_PORT": str(redis_port), "NO_COLOR": "1"}


@pytest.fixture
def api_port(free_port: int) -> int:
    """Another port the kernel calls free. free_port + 1 was a guess: in the ephemeral range it
    can be an outgoing connection's port, and a test binding it then failed in CI."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
        if port != free_port:
            return port


def test_dev_runs_redis_migrates_starts_the_services_and_stops_cleanly(
    tmp_path: Path, free_port: int, api_port: int, spawn: Callable[..., Any]
) -> None:
    state = tmp_path / "state"
    migrate = "print('schema is up to date')"
    child = spawn([sys.executable, "-c", DEV, str(state), str(api_port), migrate], _env(free_port))
    child.wait_for_line("running: console at")
    api_line = child.wait_for_line("api       | redis says")  # names padded to "projector"
    child.wait_for_line("projector | redis says")

    output = child.output
    assert f"state dir  {state}" in output
    assert f"API        http://127.0.0.1:{api_port}/docs" in output
    assert "migrate   | schema is up to date" in output
    told = api_line.split("redis says ")[1].split()
    assert told == [
        "+PONG",
        f"redis://127.0.0.1:{free_port}/0",
        f"sqlite+aiosqlite:///{state}/backfill.db",
        str(state),
        str(api_port),
    ]
    assert (state / "redis").is_dir()
    started = re.findall(r"\| started (\S+)", output)
    assert started == ["redis", "migrate", "projector", "api"]

    child.proc.send_signal(signal.SIGTERM)
    assert child.wait() == 0, child.output
    stopped = re.findall(r"\| (\S+) stopped$", child.output, re.MULTILINE)
    assert stopped == ["api", "projector", "redis", "all"]
    assert child.lines[-1].endswith("| all stopped")
    assert not port_in_use("127.0.0.1", free_port)
    assert any((state / "redis").glob("appendonly*"))


def test_a_failed_migration_stops_dev_before_the_services(
    tmp_path: Path, free_port: int, api_port: int, spawn: Callable[..., Any]
) -> None:
    migrate = "import sys; print('no such table', file=sys.stderr); sys.exit(3)"
    argv = [sys.executable, "-c", DEV, str(tmp_path), str(api_port), migrate]
    child = spawn(argv, _env(free_port))

    assert child.wait() == 1
    assert "migrate   | no such table" in child.output
    assert "the migration exited with code 3: the services were not started" in child.output
    assert "started api" not in child.output
    assert "redis stopped" in child.output
    assert not port_in_use("127.0.0.1", free_port)


@pytest.mark.parametrize("taken", ["redis", "api"])
def test_a_taken_port_is_said_plainly(
    taken: str, tmp_path: Path, free_port: int, api_port: int, spawn: Callable[..., Any]
) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", free_port if taken == "redis" else api_port))
        holder.listen()
        argv = [sys.executable, "-m", "backfill_cli", "dev", "--state-dir", str(tmp_path)]
        child = spawn([*argv, "--api-port", str(api_port)], _env(free_port))
        assert child.wait() == 1
    assert len(child.lines) == 1, child.output
    port = free_port if taken == "redis" else api_port
    assert child.lines[0].startswith("backfill: ")
    assert f"port {port} on 127.0.0.1 is already in use" in child.lines[0]
