"""The coverage pages: every series, and one in detail with its heatmap and its gaps."""

from __future__ import annotations

from typing import Any

from nicegui import ui
from nicegui.testing import User

from services.ui.tests.console import log_in, set_values, texts
from tests.support.stack import Stack, wait_until

SERIES = {"source": "sim", "symbol": "PAGE", "bar_size": "1d"}


def heatmap(user: User) -> dict[str, Any]:
    with user:
        element = user.find(marker="coverage-heatmap").elements.pop()
        assert isinstance(element, ui.echart)
        return element.options


async def test_a_series_with_a_gap_in_its_heatmap_and_list(user: User, stack: Stack) -> None:
    for start, end in (("2024-01-01", "2024-01-06"), ("2024-01-15", "2024-01-20")):
        job_id = await stack.submit(**SERIES, start=start, end=end)
        assert (await stack.wait_job(job_id))["status"] == "succeeded"
    await log_in(user)

    await user.open("/coverage")
    await user.should_see("sim · PAGE · 1d · trades")
    assert "10 bars, 2024-01-01 00:00 to 2024-01-19 00:00" in texts(user, "series-list")

    user.find("sim · PAGE · 1d · trades").click()
    await user.should_see(marker="coverage-summary", retries=40)
    assert texts(user, "coverage-summary") == [
        "sim · PAGE · 1d · trades",
        "10 bars, 2024-01-01 00:00 to 2024-01-19 00:00",
        "10 of 15 expected bars (66.7 %), calendar sim",
    ]
    options = heatmap(user)
    cells = dict(options["series"][0]["data"])
    assert len(cells) == 15  # the weekdays from the 1st to the 19th
    assert cells["2024-01-02"] == 1.0
    assert cells["2024-01-10"] == 0.0
    assert "2024-01-06" not in cells  # a Saturday: no session, no cell
    assert options["calendar"][0]["range"] == "2024"
    assert texts(user, "gaps") == [
        "2024-01-08 00:00 to 2024-01-13 00:00 UTC · 5 bars · never requested"
    ]


async def test_no_series_yet(user: User) -> None:
    await log_in(user)
    await user.open("/coverage")
    await user.should_see(marker="no-series")


async def test_the_gap_is_filled_from_the_collect_form(user: User, stack: Stack) -> None:
    for start, end in (("2024-01-01", "2024-01-06"), ("2024-01-15", "2024-01-20")):
        job_id = await stack.submit(**SERIES, start=start, end=end)
        assert (await stack.wait_job(job_id))["status"] == "succeeded"
    await log_in(user)
    await user.open("/")
    set_values(
        user, symbols="PAGE", bar_size="1d", start="2024-01-01", end="2024-01-20", mode="fill_gaps"
    )
    await user.should_see("what is stored already is not fetched again")
    user.find(marker="submit").click()
    await user.should_see("Submitted 1 job(s); they run on without this page:", retries=30)

    async def filled() -> dict[str, Any] | None:
        jobs = (await stack.api.get("/api/v1/jobs", params={"symbol": "PAGE"})).json()["jobs"]
        newest = jobs[0] if len(jobs) == 3 else None
        return newest if newest and newest["status"] == "succeeded" else None

    job = await wait_until(filled, message="the fill job done")
    assert job["progress"]["bars_stored"] == 5  # the 8th to the 12th, and nothing else
    await user.open("/coverage/series?source=sim&symbol=PAGE&bar_size=1d&price_type=trades")
    await user.should_see(marker="gaps", retries=40)
    assert texts(user, "gaps") == ["none: every expected bar is stored"]

    # Again: nothing is missing, so the job plans no chunk, and its page says so plainly.
    again = await stack.submit(**SERIES, start="2024-01-01", end="2024-01-20", mode="fill_gaps")
    assert (await stack.wait_job(again))["progress"]["chunks_total"] == 0
    await user.open(f"/jobs/{again}")
    await user.should_see(marker="progress", retries=40)
    assert texts(user, "progress") == [
        "nothing to fetch: already stored, or no session in the range"
    ]
