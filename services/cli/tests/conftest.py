"""Fixtures for the CLI tests: free ports, child processes that are always cleaned up, and a
stand-in Backfill API served over real HTTP from a thread."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

# Every wait in these tests is on a condition, bounded by this.
WAIT_S = 15.0


def wait_until(condition: Callable[[], bool], within_s: float = WAIT_S) -> None:
    deadline = time.monotonic() + within_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within_s} s")
        time.sleep(0.02)


def pick_free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def free_port() -> int:
    return pick_free_port()


class Child:
    """A child process whose combined output is collected line by line by a thread."""

    def __init__(self, argv: list[str], env: dict[str, str] | None) -> None:
        self.proc = subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for_line(self, text: str, within_s: float = WAIT_S) -> str:
        def found() -> bool:
            return any(text in line for line in self.lines) or self.proc.poll() is not None

        wait_until(found, within_s)
        for line in self.lines:
            if text in line:
                return line
        raise AssertionError(f"exited before printing {text!r}:\n{self.output}")

    def wait(self, within_s: float = WAIT_S) -> int:
        code = self.proc.wait(within_s)
        self._reader.join(within_s)
        return code


@pytest.fixture
def spawn() -> Iterator[Callable[..., Child]]:
    children: list[Child] = []

    def start(argv: list[str], env: dict[str, str] | None = None) -> Child:
        child = Child(argv, env)
        children.append(child)
        return child

    yield start
    for child in children:
        if child.proc.poll() is None:
            child.proc.kill()
            child.proc.wait()


def python_script(code: str) -> list[str]:
    return [sys.executable, "-c", code]


@dataclass
class FakeApi:
    """What the stand-in API answers, and what it was asked.

    `timelines[job_id]` is the list of answers to successive GETs of that job: None means 404
    (not projected yet); the last answer repeats.
    """

    url: str = ""
    requests: list[tuple[str, str, dict[str, list[str]], Any]] = field(default_factory=list)
    reject: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    timelines: dict[str, list[dict[str, Any] | None]] = field(default_factory=dict)
    job_list: dict[str, Any] = field(default_factory=lambda: {"jobs": [], "next_cursor": None})
    stats: dict[str, Any] = field(default_factory=dict)
    cleanup: tuple[int, Any] = (202, {"finished_before": "2024-06-23T12:00:00Z"})
    # The Authorization header of each request (None: not sent); `refuse` answers them all.
    authorizations: list[str | None] = field(default_factory=list)
    refuse: tuple[int, Any] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> Any:
        with self.lock:
            self.requests.append((method, path, query, body))
            if method == "POST" and path == "/api/v1/jobs":
                symbol = body["symbol"]
                if symbol in self.reject:
                    return 422, {"detail": self.reject[symbol]}
                return 202, {"job_id": f"job-{symbol}", "status": "queued"}
            if method == "GET" and path == "/api/v1/jobs":
                return 200, self.job_list
            if method == "GET" and path == "/api/v1/stats":
                return 200, self.stats
            if method == "POST" and path == "/api/v1/maintenance/cleanup":
                return self.cleanup
            if method == "GET" and path.startswith("/api/v1/jobs/"):
                timeline = self.timelines.get(path.rsplit("/", 1)[1])
                if not timeline:
                    return 404, {"detail": "job not found"}
                state = timeline.pop(0) if len(timeline) > 1 else timeline[0]
                return (404, {"detail": "job not found"}) if state is None else (200, state)
            return 404, {"detail": "no such route"}

    def job_gets(self, job_id: str) -> int:
        with self.lock:
            return sum(1 for m, p, _, _ in self.requests if m == "GET" and p.endswith(job_id))


def _job_json(job_id: str, symbol: str, status: str, done: int = 0, **extra: Any) -> dict[str, Any]:
    """A job as GET /api/v1/jobs/{id} answers it, `done` of 4 chunks through."""
    total = 4
    return {
        "job_id": job_id,
        "source": "sim",
        "symbol": symbol,
        "bar_size": "1m",
        "status": status,
        "progress": {
            "chunks_done": done,
            "chunks_total": total,
            "bars_stored": done * 390,
            "percent": 100.0 * done / total,
        },
        "error": None,
        **extra,
    }


@pytest.fixture
def fake_api() -> Iterator[FakeApi]:
    api = FakeApi()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self, method: str) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            with api.lock:
                api.authorizations.append(self.headers.get("Authorization"))
            status, payload = api.refuse or api.answer(
                method, parts.path, parse_qs(parts.query), body
            )
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep the test output for failures

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    api.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield api
    server.shutdown()
    server.server_close()
    thread.join(WAIT_S)


# Test modules are imported with --import-mode=importlib and cannot import this conftest, so the
# helpers they share reach them as fixtures.


@pytest.fixture
def job_json() -> Callable[..., dict[str, Any]]:
    return _job_json


@pytest.fixture
def until() -> Callable[..., None]:
    return wait_until


@pytest.fixture
def script() -> Callable[[str], list[str]]:
    return python_script
