"""The console in real headless Chromium: a job collected, watched, and found again later."""

from __future__ import annotations

import re
import time

import pytest
from playwright.async_api import Page, Playwright, expect

from tests.browser.conftest import Console, launch, log_in, screenshot
from tests.support.stack import Stack

pytestmark = pytest.mark.browser

TOTAL = "20 / 20 chunks · 7,800 bars · 100 %"  # 20 weekdays of 390 one-minute bars
PROGRESS = re.compile(r"^\d+ / 20 chunks")


async def fill_collect_form(page: Page) -> None:
    await page.get_by_label("Symbols").fill("BRWSR")
    await page.get_by_label("Bar size").click()
    await page.get_by_role("option", name="1m", exact=True).click()
    await page.get_by_label("Start", exact=True).fill("2024-01-01")
    await page.get_by_label("End (exclusive)").fill("2024-01-27")
    latency = page.get_by_label("Latency per chunk (ms)")
    await latency.fill("250")
    await latency.blur()


async def test_collect_watch_and_find_it_again(
    playwright: Playwright, console: Console, stack: Stack
) -> None:
    browser = await launch(playwright)
    page = await browser.new_page(viewport={"width": 1400, "height": 900})
    await page.goto(console.url)
    await page.wait_for_url("**/login**")
    await screenshot(page, "login")
    await log_in(page, console)

    await fill_collect_form(page)
    await expect(page.get_by_text(re.compile(r"^Plan: 1 job\(s\)"))).to_be_visible()
    await screenshot(page, "collect")
    await page.get_by_role("button", name="Submit").click()
    link = page.get_by_role("link", name=re.compile(r"^BRWSR: job "))
    await expect(link).to_be_visible()
    job_id = (await link.inner_text()).removeprefix("BRWSR: job ")

    await page.get_by_role("link", name="Jobs", exact=True).click()
    await expect(page.get_by_role("link", name="BRWSR", exact=True)).to_be_visible()
    await screenshot(page, "jobs")

    await page.get_by_role("link", name="BRWSR", exact=True).click()
    await page.wait_for_url(f"**/jobs/{job_id}")
    progress = page.get_by_text(PROGRESS)
    seen: list[str] = []
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        text = await progress.inner_text()
        if not seen or seen[-1] != text:
            seen.append(text)
        if text == TOTAL:
            break
        await page.wait_for_timeout(50)
    assert seen[-1] == TOTAL, seen
    assert len(seen) >= 5, seen  # pushed chunk by chunk while the page was open
    note = page.get_by_text("7,800 bars, drawn as 1,300 candles of 6 bars each")
    await expect(note).to_be_visible(timeout=10_000)
    await expect(page.locator("canvas").first).to_be_visible()  # ECharts drew
    await screenshot(page, "job-detail")

    await page.get_by_role("link", name="Monitoring", exact=True).click()
    await expect(page.get_by_text(f"{stack.names.namespace}worker-1", exact=True)).to_be_visible()
    await expect(page.get_by_text(re.compile(r"^group sim-workers: 1 consumer"))).to_be_visible()
    await screenshot(page, "monitoring")
    await page.get_by_role("link", name="IBKR", exact=True).click()
    await expect(page.get_by_text(re.compile(r"^Not set: every ibkr-worker"))).to_be_visible()
    await screenshot(page, "ibkr")
    await browser.close()

    # A new browser: no session, so a login, and the job is there, done, with its bars.
    again = await launch(playwright)
    page = await again.new_page(viewport={"width": 1400, "height": 900})
    await log_in(page, console, "/jobs")
    await page.wait_for_url("**/jobs")
    await expect(page.get_by_role("link", name="BRWSR", exact=True)).to_be_visible()
    await expect(page.get_by_text("succeeded", exact=True).first).to_be_visible()
    await page.get_by_role("link", name="BRWSR", exact=True).click()
    await expect(page.get_by_text(TOTAL)).to_be_visible()
    await expect(
        page.get_by_text("7,800 bars, drawn as 1,300 candles of 6 bars each")
    ).to_be_visible()
    csv = await page.request.get(f"{console.url}/downloads/{job_id}/bars.csv")
    assert csv.ok
    assert len((await csv.text()).splitlines()) == 7_801
    await again.close()
