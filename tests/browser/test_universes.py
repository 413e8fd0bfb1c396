"""Universes in real headless Chromium: one defined through the form, refused once, then run."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Page, Playwright, expect

from tests.browser.conftest import Console, launch, log_in, screenshot
from tests.support.stack import Stack

pytestmark = pytest.mark.browser


async def fill_universe_form(page: Page, name: str) -> None:
    await page.get_by_label("Name", exact=True).fill(name)
    await page.get_by_label("Source", exact=True).fill("sim")
    await page.get_by_label("Symbols").fill("BRWA, BRWB\nBRWC")
    await page.get_by_label("Bar sizes").click()
    await page.get_by_role("option", name="1h", exact=True).click()  # 1d is picked already
    await page.keyboard.press("Escape")
    await page.get_by_label("Start", exact=True).fill("2024-01-01")
    await page.get_by_label("End (exclusive)").fill("2024-01-06")
    await page.get_by_label("Description (optional)").fill("from the browser")


async def test_define_a_universe_in_the_form_and_run_it(
    playwright: Playwright, console: Console, stack: Stack
) -> None:
    browser = await launch(playwright)
    page = await browser.new_page(viewport={"width": 1400, "height": 1000})
    await log_in(page, console, "/universes")
    await page.wait_for_url("**/universes")
    await expect(page.get_by_text(re.compile(r"^No universe yet"))).to_be_visible()

    await fill_universe_form(page, "browser picks")
    save = page.get_by_role("button", name="Save universe")
    await save.click()
    refusal = page.get_by_text("Name: 1 to 64 letters, digits, _ . or - (no spaces)")
    await expect(refusal).to_be_visible()
    await screenshot(page, "universe-refused")
    assert (await stack.api.get("/api/v1/universes")).json() == []
    await expect(page.get_by_label("Symbols")).to_have_value("BRWA, BRWB\nBRWC")  # kept

    await page.get_by_label("Name", exact=True).fill("browser-picks")
    await save.click()
    await expect(refusal).to_be_hidden()
    await expect(
        page.get_by_text("sim · 3 symbols x 1d, 1h · 2024-01-01 to 2024-01-06")
    ).to_be_visible()
    await expect(page.get_by_text("from the browser", exact=True)).to_be_visible()
    stored = (await stack.api.get("/api/v1/universes/browser-picks")).json()
    assert (stored["symbols"], stored["bar_sizes"]) == (["BRWA", "BRWB", "BRWC"], ["1d", "1h"])

    await page.get_by_role("button", name="Run now").click()
    done = page.get_by_text(re.compile(r"^run \S+: 100%\s+·\s+6 jobs \(6 succeeded\)"))
    await expect(done).to_be_visible(timeout=60_000)
    await screenshot(page, "universe-run")
    runs = (await stack.api.get("/api/v1/universes/browser-picks/runs")).json()
    assert [r["jobs"] for r in runs] == [6]
    await browser.close()
