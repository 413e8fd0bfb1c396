"""Real headless Chromium on a real console process, next to the in-process stack.

The console runs as `python -m backfill_ui`, configured only by environment variables, on the
test's own Redis namespace and database; the API, projector and sim worker run in the test's
event loop (tests.support.stack), so the browser sees exactly what a user would.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, Playwright, async_playwright

from tests.support.databases import migrated_engine
from tests.support.servers import free_port
from tests.support.stack import Stack, running_stack

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
PASSWORD = "browser test password"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
STARTUP_TIMEOUT_S = 60.0


def _require_chromium() -> None:
    if CHROMIUM.exists():
        return
    reason = (
        f"the browser tests need Debian's Chromium at {CHROMIUM} "
        "(apt-get install chromium); Playwright's own browsers are not used"
    )
    if os.environ.get("BACKFILL_TEST_REQUIRE_BROWSER", "") not in ("", "0", "false"):
        pytest.fail(f"BACKFILL_TEST_REQUIRE_BROWSER is set, but {reason}", pytrace=False)
    pytest.skip(reason)


@dataclass
class Console:
    url: str
    log: Path
    process: asyncio.subprocess.Process

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


@pytest.fixture
async def database_url(tmp_path: Path) -> str:
    """SQLite only, unlike the shared fixture: the pages are tested on PostgreSQL too, by
    services/ui/tests; a browser run per database would double the slowest tests for nothing
    the browser adds."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'backfill.db'}"
    engine = await migrated_engine(url, migrate=True)
    await engine.dispose()
    return url


@pytest.fixture
async def stack(redis_url: str, database_url: str, namespace: str) -> AsyncIterator[Stack]:
    _require_chromium()
    async with running_stack(redis_url, database_url, namespace) as stack:
        yield stack


@pytest.fixture
async def console(
    stack: Stack, redis_url: str, database_url: str, namespace: str, tmp_path: Path
) -> AsyncIterator[Console]:
    port = free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        # PYTEST_CURRENT_TEST would make NiceGUI believe it runs inside pytest.
        if not key.startswith(("BACKFILL_", "PYTEST_", "NICEGUI_"))
    }
    env |= {
        "BACKFILL_REDIS_URL": redis_url,
        "BACKFILL_REDIS_NAMESPACE": namespace,
        "BACKFILL_DATABASE_URL": database_url,
        "BACKFILL_STATE_DIR": str(tmp_path / "console-state"),
        "BACKFILL_UI_HOST": "127.0.0.1",
        "BACKFILL_UI_PORT": str(port),
        "BACKFILL_UI_PASSWORD": PASSWORD,
        "BACKFILL_WORKER_TIMEOUT_S": "5",
        "PYTHONUNBUFFERED": "1",
    }
    log = tmp_path / "console.log"
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "backfill_ui", env=env, stdout=out, stderr=subprocess.STDOUT
        )
    running = Console(f"http://127.0.0.1:{port}", log, process)
    try:
        await _wait_ready(running)
        yield running
    finally:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 15)
        except TimeoutError:
            process.kill()
            await process.wait()
    assert "Traceback" not in running.tail(), running.tail()


async def _wait_ready(console: Console) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            if console.process.returncode is not None:
                raise AssertionError(f"the console exited early:\n{console.tail()}")
            try:
                if (await client.get(f"{console.url}/status")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(
        f"the console did not answer within {STARTUP_TIMEOUT_S}s:\n{console.tail()}"
    )


@pytest.fixture
async def playwright() -> AsyncIterator[Playwright]:
    _require_chromium()
    async with async_playwright() as pw:
        yield pw


async def launch(playwright: Playwright) -> Browser:
    return await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


async def log_in(page: Page, console: Console, path: str = "/") -> None:
    await page.goto(f"{console.url}{path}")
    await page.wait_for_url("**/login**")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await page.get_by_role("button", name="Log out").wait_for()


async def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
