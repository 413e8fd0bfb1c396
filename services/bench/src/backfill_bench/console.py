"""A5 console: a `chunk.collected` event to a connected browser page showing it.

Real headless Chromium (Debian's, driven by Playwright) logs in to the console (`python -m
backfill_ui`) and opens a running job's page. The job's chunks come from the sim worker, spaced
by the sim's latency option so that each one is seen on its own. In the page, a
MutationObserver notes `Date.now()` when the progress line first shows "k / N chunks"; the
latency of chunk k is that minus the `ts` the worker stamped on its event (same machine, same
clock). It ends at the DOM change, before the paint (one frame more at most); the clock
resolution is 1 ms. Chunks done before the page was watching are left out.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from backfill_bench.context import Context
from backfill_bench.events import EventWatcher
from backfill_bench.jobs import BenchError, JobShape, check_jobs, wait_succeeded
from backfill_bench.results import Metric, Run, Target, Workload
from backfill_bench.stats import latency_figures

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
RECORD = """(total) => {
  const pattern = new RegExp('(\\\\d+) / ' + total + ' chunks');
  const count = () => { const m = document.body.textContent.match(pattern); return m ? +m[1] : 0; };
  window.__initial = count();
  window.__seen = {};
  const note = () => {
    const now = Date.now();
    for (let k = 1; k <= count(); k++) if (!(k in window.__seen)) window.__seen[k] = now;
  };
  note();
  new MutationObserver(note).observe(document.body,
    {subtree: true, childList: true, characterData: true});
}"""


def unavailable() -> str | None:
    """Why A5 cannot run here, or None."""
    if not CHROMIUM.exists():
        return "skipped: no chromium"
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return "skipped: no playwright"
    return None


def workload(note: str) -> Workload:
    return Workload(
        "A5",
        "console (event -> browser)",
        f"{note}; chunk.collected ts -> MutationObserver sees 'k / N chunks' in Chromium",
        [
            Metric("p50_ms", "p50 ms", None, ("F1", "p50_ms")),
            Metric("p99_ms", "p99 ms", Target("<=", 100), ("F1", "p99_ms")),
        ],
    )


class Browser:
    """Chromium logged in to the console, kept open over the runs."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._playwright: Any = None
        self._browser: Any = None
        self.page: Any = None

    async def __aenter__(self) -> Browser:
        from playwright.async_api import async_playwright

        await self.ctx.stack.start_console()
        self._playwright = await async_playwright().start()
        self._browser = await self._playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        self.page = await self._browser.new_page()
        page, stack = self.page, self.ctx.stack
        await page.goto(f"{stack.console_url}/")
        await page.wait_for_url("**/login**")
        await page.get_by_label("Password").fill(stack.console_password)
        await page.get_by_role("button", name="Log in").click()
        await page.get_by_role("button", name="Log out").wait_for()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._browser is not None:
            await self._browser.close()
        if self._playwright is not None:
            await self._playwright.stop()


async def run(ctx: Context, browser: Browser, number: int) -> Run:
    shape = JobShape(weekdays=ctx.sizes.console_chunks)
    options = {"latency_ms": ctx.sizes.console_chunk_ms, "fail_every": 0}
    latencies: list[float] = []
    symbols = [f"C{number}N{n:02d}" for n in range(ctx.sizes.console_jobs)]
    job_ids = []
    page = browser.page
    async with (
        EventWatcher(ctx.stack.redis_url, ctx.stack.names, {"chunk.collected"}) as watcher,
        ctx.client(via_redis=True) as client,
    ):
        for symbol in symbols:
            began = time.monotonic()
            job_id = await client.submit("sim", symbol, "1m", shape.start, shape.end, options)
            job_ids.append(job_id)
            await _wait_projected(ctx, job_id)
            await page.goto(f"{ctx.stack.console_url}/jobs/{job_id}")
            await page.get_by_text(f"/ {shape.chunks} chunks").first.wait_for()
            await page.evaluate(RECORD, shape.chunks)
            await wait_succeeded(ctx.db, [job_id], began=began, timeout_s=120)
            await page.wait_for_function(f"() => {shape.chunks} in window.__seen", timeout=10_000)
            initial = int(await page.evaluate("window.__initial"))
            seen: dict[str, int] = await page.evaluate("window.__seen")
            keys = [("chunk.collected", job_id, c) for c in range(shape.chunks)]
            await watcher.wait_for(keys, 10)
            for count in range(initial + 1, shape.chunks + 1):
                stamped = watcher.stamped[("chunk.collected", job_id, count - 1)]
                latencies.append(seen[str(count)] - stamped * 1000)
    if not latencies:
        raise BenchError("the page never saw a chunk arrive: every chunk was done before it")
    checked = await check_jobs(ctx.db, job_ids, symbols, shape)
    return Run(latency_figures(latencies), {"latency_ms": latencies}, checked)


async def _wait_projected(ctx: Context, job_id: str) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if await ctx.db.fetchval("SELECT 1 FROM jobs WHERE job_id = $1", job_id):
            return
        await asyncio.sleep(0.005)
    raise BenchError(f"job {job_id} did not show in the projection within 10 s")
