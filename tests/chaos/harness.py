"""The chaos harness: a whole Backfill deployment as real processes, and ways to hurt it.

Each scenario gets its own redis-server (AOF on, `appendfsync everysec`, restartable on the same
port and data) and its own PostgreSQL database, migrated with `python -m backfill_readmodel
upgrade`. The projector, the API and every sim worker run as `sys.executable -m <module>` with
their settings in the environment, exactly as a deployment runs them. Only processes started
here are ever signalled: each is held as a `subprocess.Popen`, never looked up by name.

State is read the way a user reads it (the API), plus the streams in Redis and direct SQL for
the checks the API cannot answer (duplicate rows).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from backfill_bus import Names
from backfill_readmodel.engine import create_engine
from tests.support.servers import RedisServer
from tests.support.stack import wait_until

TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
BARS_PER_DAY = 390  # sim 1m bars per weekday: 09:30-16:00 New York
NAMESPACE = "chaos:"  # every key and stream prefixed, as a shared deployment would run
API_TOKEN = "chaos-admin-token-0123456789"  # the API's BACKFILL_API_TOKENS, as admin


def weekdays_end(start: date, weekdays: int) -> date:
    """The exclusive end date that makes a range from `start` hold exactly `weekdays` weekdays."""
    day, seen = start, 0
    while seen < weekdays:
        if day.weekday() < 5:
            seen += 1
        day += timedelta(days=1)
    return day


def ts_of(value: str) -> float:
    """Epoch seconds of an ISO 8601 timestamp from the API."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def entry_ms(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def text_of(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def spread(values: Iterable[float]) -> dict[str, float | int | None]:
    """Median and worst of a list of seconds, rounded for the report."""
    items = sorted(values)
    if not items:
        return {"count": 0, "median": None, "worst": None}
    return {
        "count": len(items),
        "median": round(statistics.median(items), 3),
        "worst": round(items[-1], 3),
    }


class ChaosRedis(RedisServer):
    """The test Redis with a log, killed and started again on the same port and data directory,
    so every client reconnects to the same address and Redis reloads the same append-only file.
    """

    def __init__(self, data_dir: Path, log_path: Path) -> None:
        super().__init__(data_dir, log_path)


@dataclass
class Service:
    """One service process; its output goes to `<log_dir>/<name>.log` across restarts."""

    name: str
    args: list[str]
    env: dict[str, str]
    log_dir: Path
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"{self.name}.log"

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        assert not self.alive, f"{self.name} is already running"
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"=== {self.name} start #{self.starts} at {time.time():.3f}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                self.args, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )

    def signal(self, signum: int) -> None:
        assert self.process is not None, f"{self.name} was never started"
        assert self.alive, f"{self.name} is not running"
        self.process.send_signal(signum)

    async def wait_exit(self, timeout: float) -> int | None:
        """The exit code, or None if the process still runs after `timeout` seconds."""
        if self.process is None:
            return None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                return code
            await asyncio.sleep(0.02)
        return self.process.poll()

    async def kill9(self) -> None:
        self.signal(signal.SIGKILL)
        code = await self.wait_exit(10)
        assert code is not None, f"{self.name} survived SIGKILL"

    async def stop(self, grace: float = 15) -> None:
        """SIGTERM, then SIGKILL after `grace` seconds; always reaps the process."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            if await self.wait_exit(grace) is None:
                self.process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)

    def tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return ""


@dataclass
class ClusterConfig:
    workers: int = 3
    claim_idle_ms: int = 2500
    claim_interval_ms: int = 250
    max_deliveries: int = 5
    heartbeat_interval_s: float = 1.0
    retry_base_delay_s: float = 0.05
    retry_max_delay_s: float = 0.5
    poll_interval_ms: int = 100
    extra_env: dict[str, str] = field(default_factory=dict)


class Cluster:
    """Redis, PostgreSQL, the projector, the API and N sim workers, each a real process."""

    def __init__(self, workdir: Path, database_url: str, config: ClusterConfig) -> None:
        self.workdir = workdir
        self.log_dir = workdir / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.database_url = database_url
        self.config = config
        self.redis_server = ChaosRedis(workdir / "redis", self.log_dir / "redis.log")
        self.names = Names(NAMESPACE)
        self.api_port = _free_port()
        self.env = self._environment()
        python = sys.executable
        self.projector = Service(
            "projector", [python, "-m", "backfill_projector", "run"], self.env, self.log_dir
        )
        self.api = Service("api", [python, "-m", "backfill_api"], self.env, self.log_dir)
        self.workers: dict[str, Service] = {}
        for number in range(1, config.workers + 1):
            worker_id = f"chaos-w{number}"
            env = {**self.env, "BACKFILL_WORKER_ID": worker_id}
            self.workers[worker_id] = Service(
                worker_id, [python, "-m", "backfill_sim"], env, self.log_dir
            )
        self.redis: Redis = Redis.from_url(self.redis_server.url)
        self.engine: AsyncEngine = create_engine(database_url)
        self.http = httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{self.api_port}",
            timeout=httpx.Timeout(15),
            headers={"Authorization": f"Bearer {API_TOKEN}"},
        )

    # ---- lifecycle -------------------------------------------------------------------------

    def _environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BACKFILL_")}
        c = self.config
        env.update(
            {
                "PYTHONUNBUFFERED": "1",
                "BACKFILL_REDIS_URL": self.redis_server.url,
                "BACKFILL_DATABASE_URL": self.database_url,
                "BACKFILL_REDIS_NAMESPACE": NAMESPACE,
                "BACKFILL_STATE_DIR": str(self.workdir / "state"),
                "BACKFILL_API_HOST": "127.0.0.1",
                "BACKFILL_API_PORT": str(self.api_port),
                "BACKFILL_API_TOKENS": f"admin:{API_TOKEN}",
                "BACKFILL_CLAIM_IDLE_MS": str(c.claim_idle_ms),
                "BACKFILL_CLAIM_INTERVAL_MS": str(c.claim_interval_ms),
                "BACKFILL_MAX_DELIVERIES": str(c.max_deliveries),
                "BACKFILL_HEARTBEAT_INTERVAL_S": str(c.heartbeat_interval_s),
                "BACKFILL_RETRY_BASE_DELAY_S": str(c.retry_base_delay_s),
                "BACKFILL_RETRY_MAX_DELAY_S": str(c.retry_max_delay_s),
                "BACKFILL_POLL_INTERVAL_MS": str(c.poll_interval_ms),
                **c.extra_env,
            }
        )
        return env

    @property
    def services(self) -> list[Service]:
        return [self.projector, self.api, *self.workers.values()]

    async def start(self) -> None:
        self.redis_server.start()
        await self.migrate()
        for service in self.services:
            service.start()
        await self.wait_ready()

    async def migrate(self) -> None:
        log_path = self.log_dir / "migrate.log"
        with log_path.open("ab") as log:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "backfill_readmodel", "upgrade",
                env=self.env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        try:
            code = await asyncio.wait_for(process.wait(), timeout=60)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise
        assert code == 0, log_path.read_text(errors="replace")[-3000:]

    async def wait_ready(self, timeout: float = 60) -> None:
        """The API is healthy, the projector reads its group and every worker is a consumer."""
        deadline = time.monotonic() + timeout
        problem = "nothing checked yet"
        while time.monotonic() < deadline:
            dead = [s.name for s in self.services if not s.alive]
            if dead:
                raise AssertionError(f"{dead} exited during start:\n{self.tails(dead)}")
            problem = await self._not_ready()
            if not problem:
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"cluster not ready in {timeout}s: {problem}\n{self.tails()}")

    async def _not_ready(self) -> str:
        try:
            health = await self.http.get("/api/v1/health")
            if health.status_code != 200:
                return f"api health {health.status_code}"
        except httpx.TransportError as error:
            return f"api: {error!r}"
        consumers = set(await self.consumers(self.names.events, "projector"))
        if "projector" not in consumers:
            return "projector has not read its group yet"
        # Not XINFO CONSUMERS: Redis 7.0 adds a consumer to the group only once it is given an
        # entry. A worker says it is up with an `idle` heartbeat carrying its pid.
        idle = await self.idle_worker_pids()
        missing = [w for w, s in self.workers.items() if s.pid not in idle.get(w, set())]
        if missing:
            return f"workers without an idle heartbeat yet: {missing}"
        return ""

    async def idle_worker_pids(self) -> dict[str, set[int]]:
        """worker id -> pids that sent an `idle` heartbeat (reads the whole log: use at start)."""
        entries: Any = await self.redis.xrange(self.names.events)
        pids: dict[str, set[int]] = {}
        for _, fields in entries:
            body = fields.get(b"__data__", b"")
            if b'"worker.heartbeat"' not in body:
                continue
            beat = json.loads(body)
            if beat.get("state") == "idle":
                pids.setdefault(beat["worker_id"], set()).add(int(beat["pid"]))
        return pids

    async def restart_redis(self, signum: int, down_s: float) -> tuple[float, float, float]:
        """Stop Redis with `signum`, keep it down `down_s`, start it on the same port and AOF.

        Returns the time.time() of the signal, of the process's exit and of its answering
        again. The test's own client drops its dead connections, as every service's must.
        """
        signalled_at = time.time()
        await asyncio.to_thread(self.redis_server.kill, signum)
        exited_at = time.time()
        await asyncio.sleep(down_s)
        await asyncio.to_thread(self.redis_server.start)
        back_at = time.time()
        await self.redis.connection_pool.disconnect()
        return signalled_at, exited_at, back_at

    async def close(self, keep_logs_in: Path | None = None) -> None:
        # Workers first (they hand jobs back), then the projector and the API, then Redis.
        await asyncio.gather(*(w.stop() for w in self.workers.values()))
        await asyncio.gather(self.projector.stop(), self.api.stop())
        self.redis_server.stop()
        await self.http.aclose()
        await self.redis.aclose()
        await self.engine.dispose()
        if keep_logs_in is not None:
            shutil.rmtree(keep_logs_in, ignore_errors=True)
            shutil.copytree(self.log_dir, keep_logs_in)

    def tails(self, names: Iterable[str] | None = None, chars: int = 2500) -> str:
        wanted = set(names) if names is not None else None
        parts = []
        for service in self.services:
            if wanted is None or service.name in wanted:
                parts.append(f"--- {service.name} (pid {service.pid}) ---\n{service.tail(chars)}")
        return "\n".join(parts)

    # ---- the API ---------------------------------------------------------------------------

    async def submit(self, **job: Any) -> str:
        response = await self.http.post("/api/v1/jobs", json=job)
        assert response.status_code == 202, response.text
        job_id: str = response.json()["job_id"]
        return job_id

    async def job(self, job_id: str) -> dict[str, Any]:
        response = await self.http.get(f"/api/v1/jobs/{job_id}")
        if response.status_code == 404:
            return {}
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    async def events(self, job_id: str) -> list[dict[str, Any]]:
        response = await self.http.get(f"/api/v1/jobs/{job_id}/events")
        response.raise_for_status()
        events: list[dict[str, Any]] = response.json()
        return events

    async def statuses(self) -> dict[str, str]:
        response = await self.http.get("/api/v1/jobs", params={"limit": 500})
        response.raise_for_status()
        return {job["job_id"]: job["status"] for job in response.json()["jobs"]}

    async def wait_terminal(self, job_ids: Iterable[str], timeout: float) -> dict[str, str]:
        """Poll the API until every job has ended; fail with the streams' state if not."""
        wanted = set(job_ids)
        deadline = time.monotonic() + timeout
        statuses: dict[str, str] = {}
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.TransportError, httpx.HTTPStatusError):
                statuses = await self.statuses()
            if all(statuses.get(job_id) in TERMINAL for job_id in wanted):
                return {job_id: statuses[job_id] for job_id in wanted}
            await asyncio.sleep(0.25)
        open_jobs = {j: statuses.get(j) for j in wanted if statuses.get(j) not in TERMINAL}
        raise AssertionError(
            f"{len(open_jobs)} jobs did not end in {timeout}s: {dict(list(open_jobs.items())[:5])}"
            f"\nstreams: {await self.diagnose()}\n{self.tails()}"
        )

    async def wait_status(self, job_id: str, statuses: set[str], timeout: float) -> float:
        """Poll the job every 10 ms until it has one of `statuses`; returns the time.time()."""
        deadline = time.monotonic() + timeout
        last: dict[str, Any] = {}
        while time.monotonic() < deadline:
            last = await self.job(job_id)
            if last.get("status") in statuses:
                return time.time()
            await asyncio.sleep(0.01)
        raise AssertionError(f"job {job_id} not in {statuses} after {timeout}s: {last}")

    async def wait_chunks_done(self, job_id: str, chunks: int, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        last: dict[str, Any] = {}
        while time.monotonic() < deadline:
            last = await self.job(job_id)
            if last and last["progress"]["chunks_done"] >= chunks:
                return last
            await asyncio.sleep(0.05)
        raise AssertionError(f"job {job_id} did not reach {chunks} chunks in {timeout}s: {last}")

    async def checkpointed_chunks(self, job_id: str) -> int:
        """Chunks the job's workers have collected: their checkpoints, ahead of the projections."""
        return int(await self.redis.hlen(self.names.job_key(job_id, "chunks_done")))

    async def wait_checkpointed(self, job_id: str, chunks: int, timeout: float) -> int:
        async def reached() -> int:
            done = await self.checkpointed_chunks(job_id)
            return done if done >= chunks else 0

        done: int = await wait_until(reached, timeout, f"job {job_id} at {chunks} chunks")
        return done

    async def bar_stamps(self, symbol: str) -> list[str]:
        """The bars of a symbol through the API, as CSV (cheaper than JSON for 20k rows)."""
        response = await self.http.get(
            "/api/v1/bars",
            params={"source": "sim", "symbol": symbol, "bar_size": "1m", "format": "csv"},
        )
        response.raise_for_status()
        return [line.split(",", 1)[0] for line in response.text.splitlines()[1:] if line]

    async def wait_worker_idle(self, worker_id: str, timeout: float = 30) -> None:
        """Until the worker's current process (by pid) has said `idle` in the read model."""
        service = self.workers[worker_id]
        deadline = time.monotonic() + timeout
        rows: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            rows = await self.worker_rows()
            for row in rows:
                mine = row["worker_id"] == worker_id and row["pid"] == service.pid
                if mine and row["state"] == "idle":
                    return
            await asyncio.sleep(0.05)
        raise AssertionError(f"{worker_id} (pid {service.pid}) not idle in {timeout}s: {rows}")

    async def worker_rows(self) -> list[dict[str, Any]]:
        """Every worker the read model knows: the API's list if it has one, else the table."""
        listed = await self.workers_endpoint()
        if listed is not None:
            return listed
        columns = ("worker_id", "state", "pid", "last_heartbeat")
        rows = await self.sql(f"SELECT {', '.join(columns)} FROM workers")
        return [
            {**dict(zip(columns, row, strict=True)), "last_heartbeat": row[3].isoformat()}
            for row in rows
        ]

    async def workers_endpoint(self) -> list[dict[str, Any]] | None:
        """`GET /api/v1/workers` if the API has it, else None."""
        response = await self.http.get("/api/v1/workers")
        if response.status_code in (404, 405):
            return None
        response.raise_for_status()
        body: Any = response.json()
        workers = body.get("workers", body) if isinstance(body, dict) else body
        return list(workers)

    # ---- Redis -----------------------------------------------------------------------------

    @property
    def command_stream(self) -> str:
        return self.names.command_stream("sim")

    @property
    def command_group(self) -> str:
        return self.names.command_group("sim")

    async def consumers(self, stream: str, group: str) -> dict[str, dict[str, Any]]:
        try:
            rows: Any = await self.redis.xinfo_consumers(stream, group)
        except Exception:  # no stream or group yet
            return {}
        return {text_of(row["name"]): row for row in rows}

    async def command_consumers(self) -> dict[str, dict[str, Any]]:
        return await self.consumers(self.command_stream, self.command_group)

    async def held_entries(self) -> list[dict[str, Any]]:
        """Pending command entries: consumer, entry id, idle ms, deliveries and job id."""
        rows: Any = await self.redis.xpending_range(
            self.command_stream, self.command_group, min="-", max="+", count=1000
        )
        held = []
        for row in rows:
            entry_id = text_of(row["message_id"])
            entries: Any = await self.redis.xrange(self.command_stream, entry_id, entry_id)
            job_id = "?"
            if entries:
                with contextlib.suppress(ValueError, KeyError, TypeError, AttributeError):
                    job_id = json.loads(entries[0][1][b"__data__"])["job_id"]
            held.append(
                {
                    "consumer": text_of(row["consumer"]),
                    "entry_id": entry_id,
                    "idle_ms": int(row["time_since_delivered"]),
                    "deliveries": int(row["times_delivered"]),
                    "job_id": job_id,
                }
            )
        return held

    async def running_jobs(self) -> dict[str, list[str]]:
        """worker id -> jobs it is running now: held entries its claim keeper keeps fresh.

        An entry left by a killed worker stays under its name (a restarted worker reuses the
        name) until claimed; it grows idle, which tells it apart from the job now running.
        """
        running: dict[str, list[str]] = {}
        for entry in await self.held_entries():
            if entry["idle_ms"] < self.config.claim_idle_ms:
                running.setdefault(entry["consumer"], []).append(entry["job_id"])
        return running

    async def dlq(self) -> list[tuple[str, dict[bytes, bytes]]]:
        entries: Any = await self.redis.xrange(self.names.dlq)
        return [(text_of(entry_id), fields) for entry_id, fields in entries]

    async def diagnose(self) -> dict[str, Any]:
        """Stream lengths, groups, consumers and pending entries: what a stuck run needs."""
        state: dict[str, Any] = {}
        try:
            for stream in (self.command_stream, self.names.events, self.names.dlq):
                if not await self.redis.exists(stream):
                    state[stream] = "missing"
                    continue
                groups: Any = await self.redis.xinfo_groups(stream)
                state[stream] = {
                    "length": await self.redis.xlen(stream),
                    "groups": [
                        {k: text_of(g[k]) if isinstance(g[k], bytes) else g[k]
                         for k in ("name", "consumers", "pending", "last-delivered-id")}
                        for g in groups
                    ],
                }  # fmt: skip
            state["consumers"] = {
                name: {"pending": row["pending"], "idle": row["idle"]}
                for name, row in (await self.command_consumers()).items()
            }
            state["held"] = (await self.held_entries())[:20]
        except Exception as error:  # diagnosing must never hide the original failure
            state["error"] = repr(error)
        state["alive"] = {s.name: s.alive for s in self.services}
        return state

    # ---- SQL -------------------------------------------------------------------------------

    async def sql(self, query: str, **params: Any) -> list[tuple[Any, ...]]:
        async with self.engine.connect() as conn:
            result = await conn.execute(text(query), params)
            return [tuple(row) for row in result]

    async def bars_by_symbol(self) -> dict[str, int]:
        rows = await self.sql(
            "SELECT symbol, count(*) FROM bars WHERE source = 'sim' AND bar_size = '1m' "
            "GROUP BY symbol"
        )
        return {str(symbol): int(count) for symbol, count in rows}

    async def duplicate_bars(self) -> list[tuple[Any, ...]]:
        """Rows sharing a symbol, bar size and time (the primary key makes this impossible)."""
        return await self.sql(
            "SELECT symbol, bar_size, ts, count(*) FROM bars "
            "GROUP BY symbol, bar_size, ts HAVING count(*) > 1 LIMIT 20"
        )

    async def projector_position(self) -> str | None:
        rows = await self.sql(
            "SELECT last_id FROM projector_positions WHERE stream = :stream",
            stream=self.names.events,
        )
        return str(rows[0][0]) if rows else None

    # ---- liveness --------------------------------------------------------------------------

    async def liveness(self, fresh_within_s: float = 10) -> dict[str, Any]:
        """Processes running, workers consuming, and heartbeats fresh (API, else the table)."""
        report: dict[str, Any] = {
            "processes_dead": [s.name for s in self.services if not s.alive],
        }
        consumers = await self.command_consumers()
        report["consumers_missing"] = sorted(set(self.workers) - set(consumers))
        listed = await self.workers_endpoint()
        report["heartbeats_from"] = "workers table" if listed is None else "GET /api/v1/workers"
        beats: dict[str, tuple[str, float]] = {}
        for row in await self.worker_rows():
            state = str(row["state"])
            if row.get("alive") is False:
                state = f"{state} (alive: false)"
            beats[str(row["worker_id"])] = (state, ts_of(str(row["last_heartbeat"])))
        now = time.time()
        report["heartbeats"] = {
            worker_id: {"state": beats[worker_id][0], "age_s": round(now - beats[worker_id][1], 2)}
            for worker_id in self.workers
            if worker_id in beats
        }
        report["heartbeats_stale"] = sorted(
            worker_id
            for worker_id in self.workers
            if worker_id not in beats
            or now - beats[worker_id][1] > fresh_within_s
            or beats[worker_id][0] not in ("idle", "busy")
        )
        return report

    async def assert_alive(self, timeout: float = 15) -> dict[str, Any]:
        """Wait (bounded) for every process to run, consume and beat; returns the last report."""
        deadline = time.monotonic() + timeout
        report: dict[str, Any] = {}
        while time.monotonic() < deadline:
            report = await self.liveness()
            if not (
                report["processes_dead"]
                or report["consumers_missing"]
                or report["heartbeats_stale"]
            ):
                return report
            if report["processes_dead"]:
                break  # a dead process does not come back by itself
            await asyncio.sleep(0.5)
        raise AssertionError(f"not every consumer is alive: {report}\n{self.tails()}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def running_cluster(
    workdir: Path,
    database_url: str,
    config: ClusterConfig | None = None,
    keep_logs_in: Path | None = None,
) -> AsyncIterator[Cluster]:
    cluster = Cluster(workdir, database_url, config or ClusterConfig())
    try:
        await cluster.start()
        yield cluster
    finally:
        await cluster.close(keep_logs_in)


# ---- the shared load and its checks ----------------------------------------------------------


@dataclass(frozen=True)
class Load:
    """N sim jobs of `chunks` weekdays of 1m bars each, one symbol per job."""

    jobs: int = 20
    chunks: int = 50
    latency_ms: int = 80
    start: date = date(2024, 1, 1)
    prefix: str = "CH"

    @property
    def end(self) -> date:
        return weekdays_end(self.start, self.chunks)

    @property
    def bars_per_job(self) -> int:
        return BARS_PER_DAY * self.chunks

    def symbols(self) -> list[str]:
        return [f"{self.prefix}{n:03d}" for n in range(self.jobs)]

    def request(self, symbol: str) -> dict[str, Any]:
        return {
            "source": "sim",
            "symbol": symbol,
            "bar_size": "1m",
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "options": {"latency_ms": self.latency_ms},
        }


async def submit_load(cluster: Cluster, load: Load) -> dict[str, str]:
    """Submit every job of the load through the API; returns job id -> symbol."""
    jobs = {}
    for symbol in load.symbols():
        jobs[await cluster.submit(**load.request(symbol))] = symbol
    return jobs


def logged_at(event: Mapping[str, Any]) -> float:
    """When an event reached the log: its stream entry id is Redis's clock at XADD, in ms.

    Not the event's `ts`, which its producer sets before sending: a worker that keeps retrying
    an append while Redis is down stamps the event long before anyone can read it.
    """
    return entry_ms(str(event["event_id"]))[0] / 1000


@dataclass
class JobHistory:
    job_id: str
    events: list[dict[str, Any]]

    def of_type(self, *types: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] in types]

    def chunk_events(self) -> list[dict[str, Any]]:
        return self.of_type("chunk.collected")

    def redone_chunks(self) -> int:
        """chunk.collected events beyond one per chunk: work done twice."""
        chunks = Counter(e["data"]["chunk"] for e in self.chunk_events())
        return sum(count - 1 for count in chunks.values())

    def next_progress_after(self, moment: float) -> float | None:
        """Seconds from `moment` to the job's next chunk.collected or terminal event on the log."""
        for event in self.events:
            if event["type"] in ("chunk.collected", "job.succeeded", "job.failed"):
                stamp = logged_at(event)
                if stamp > moment:
                    return stamp - moment
        return None

    def started_before(self, moment: float) -> bool:
        return any(logged_at(e) < moment for e in self.of_type("job.started"))

    def ended_before(self, moment: float) -> bool:
        return any(
            logged_at(e) <= moment
            for e in self.of_type("job.succeeded", "job.failed", "job.cancelled")
        )


async def histories(cluster: Cluster, job_ids: Iterable[str]) -> dict[str, JobHistory]:
    return {job_id: JobHistory(job_id, await cluster.events(job_id)) for job_id in job_ids}


async def verify_load(
    cluster: Cluster,
    load: Load,
    jobs: Mapping[str, str],
    figures: dict[str, Any],
    *,
    timeout: float,
    max_redone_chunks: int,
    max_extra_starts: int,
) -> dict[str, JobHistory]:
    """Every job succeeded with exact bars, no duplicates, nothing left pending, all alive."""
    statuses = await cluster.wait_terminal(jobs, timeout=timeout)
    figures["jobs_succeeded"] = sum(status == "succeeded" for status in statuses.values())
    by_symbol = await cluster.bars_by_symbol()
    duplicates = await cluster.duplicate_bars()
    figures["bars_expected"] = load.bars_per_job * len(jobs)
    figures["bars_stored"] = sum(by_symbol.get(symbol, 0) for symbol in jobs.values())
    figures["duplicates"] = len(duplicates)
    history = await histories(cluster, jobs)
    figures["redone_chunks"] = sum(h.redone_chunks() for h in history.values())
    figures["job_starts_beyond_first"] = sum(
        len(h.of_type("job.started")) - 1 for h in history.values()
    )
    figures["handed_back_events"] = sum(len(h.of_type("job.handed_back")) for h in history.values())
    figures["dlq_length"] = len(await cluster.dlq())

    failed = {j: s for j, s in statuses.items() if s != "succeeded"}
    assert not failed, f"jobs not succeeded: {failed}; errors: {await _errors(cluster, failed)}"
    assert not duplicates, f"duplicate bars: {duplicates}"
    wrong_sql = {
        s: by_symbol.get(s, 0) for s in jobs.values() if by_symbol.get(s, 0) != load.bars_per_job
    }
    assert not wrong_sql, f"bar counts (SQL) != {load.bars_per_job}: {wrong_sql}"
    for job_id, symbol in jobs.items():
        stamps = await cluster.bar_stamps(symbol)
        assert len(stamps) == len(set(stamps)) == load.bars_per_job, (symbol, len(stamps))
        progress = (await cluster.job(job_id))["progress"]
        assert progress["chunks_done"] == progress["chunks_total"] == load.chunks, progress
        assert progress["bars_stored"] == load.bars_per_job, (job_id, progress)
    pending: Any = await cluster.redis.xpending(cluster.command_stream, cluster.command_group)
    figures["commands_pending_at_end"] = int(pending["pending"])
    assert pending["pending"] == 0, f"commands left pending: {await cluster.held_entries()}"
    assert figures["redone_chunks"] <= max_redone_chunks, (
        f"{figures['redone_chunks']} chunks collected twice (allowed {max_redone_chunks}): "
        "a resumed job must continue at its first unfinished chunk"
    )
    # A job starts again only when its worker died (or Redis lost its claim): more starts than
    # that means a claimer took a job from a live worker, so it ran twice at once.
    assert figures["job_starts_beyond_first"] <= max_extra_starts, (
        f"{figures['job_starts_beyond_first']} restarts of jobs (allowed {max_extra_starts}): "
        "a live worker's job was taken over"
    )
    figures["liveness"] = await cluster.assert_alive()
    return history


async def _errors(cluster: Cluster, job_ids: Iterable[str]) -> dict[str, Any]:
    return {job_id: (await cluster.job(job_id)).get("error") for job_id in list(job_ids)[:5]}


@contextlib.contextmanager
def outcome(figures: dict[str, Any]) -> Iterator[None]:
    """Mark the scenario passed, or keep why it failed, in its figures."""
    try:
        yield
    except BaseException as error:
        figures["failure"] = f"{type(error).__name__}: {error}"[:3000]
        raise
    figures["passed"] = True


def write_figures(path: Path, figures: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(figures, indent=2, default=str, sort_keys=False) + "\n")
