"""Collect: several symbols become one job each, bad input is refused as the API refuses it."""

from __future__ import annotations

import asyncio
from typing import Any

from nicegui import ui
from nicegui.testing import User

from services.ui.tests.console import enabled, eventually, log_in, set_values, texts
from tests.support.stack import Stack, wait_until


async def test_several_symbols_become_one_job_each(user: User, stack: Stack) -> None:
    await log_in(user)
    await user.open("/")
    set_values(user, symbols="AAPL, MSFT  IBM", bar_size="1d", start="2024-01-01", end="2024-03-01")
    await user.should_see("Plan: 3 job(s) x up to 1 request(s) = 3 request(s), no pacing wait")
    user.find(marker="submit").click()
    await user.should_see("Submitted 3 job(s); they run on without this page:", retries=30)
    links = texts(user, "submitted")
    assert [link.split(":")[0] for link in links[1:]] == ["AAPL", "MSFT", "IBM"]

    async def projected() -> list[dict[str, Any]]:  # the projector folds the submits a bit later
        found: list[dict[str, Any]] = (await stack.api.get("/api/v1/jobs")).json()["jobs"]
        return found if len(found) >= 3 else []

    jobs = await wait_until(projected, message="the three jobs projected")
    assert sorted(job["symbol"] for job in jobs) == ["AAPL", "IBM", "MSFT"]
    for job in jobs:
        await stack.wait_job(job["job_id"])
    # The toast for jobs submitted from this browser, once each ends.
    await eventually(
        lambda: _all_toasts(user, ["AAPL (sim, 1d) succeeded", "MSFT (sim, 1d) succeeded"]),
        what="a toast per ended job",
    )
    await user.open("/jobs")
    for job in jobs:
        await user.should_see(marker=f"job-{job['job_id']}")


def _all_toasts(user: User, wanted: list[str]) -> None:
    for message in wanted:
        assert user.notify.contains(message), user.notify.messages


async def test_bad_input_is_explained_and_nothing_is_submitted(user: User, stack: Stack) -> None:
    await log_in(user)
    await user.open("/")
    set_values(user, symbols="AAPL BAD/SYMBOL", start="2024-03-01", end="2024-01-01")
    await user.should_see(
        "Symbols: 'BAD/SYMBOL': symbol must be 1 to 32 characters of A-Z a-z 0-9 . ^ = _ -"
    )
    await user.should_see("start must be before end (start is inclusive, end exclusive)")
    set_values(user, symbols="AAPL", start="2024-01-01", end="2024-02-01")
    set_values(user, **{"option-latency_ms": -5})
    await user.should_see("Option latency_ms: Input should be greater than or equal to 0")
    assert not enabled(user, "submit")

    # IBKR's options come from its model, checked by its own rules.
    set_values(user, source="ibkr")
    await user.should_see(marker="option-sec_type")
    set_values(user, **{"option-sec_type": "FUT"})
    await user.should_see("Options: a futures job needs `expiry` (YYYYMM or YYYYMMDD)")
    set_values(user, source="yahoo")
    await user.should_see(marker="option-adjusted")  # Yahoo: raw or adjusted prices

    # Yahoo with AAPL over January is valid again: break it once more, then click anyway.
    set_values(user, end="2023-12-01")
    await user.should_see("start must be before end (start is inclusive, end exclusive)")
    assert not enabled(user, "submit")
    user.find(marker="submit").click()  # disabled: nothing happens
    await asyncio.sleep(0.5)  # room for a submit the click might have started to reach Redis
    for source in ("sim", "yahoo", "ibkr"):
        assert await stack.redis.xlen(stack.names.command_stream(source)) == 0, source
    entries: Any = await stack.redis.xrange(stack.names.events)
    logged = [fields[b"__data__"] for _, fields in entries]
    assert not [data for data in logged if b'"job.submitted"' in data]


async def test_what_a_user_types_is_shown_as_text_never_as_html(user: User, stack: Stack) -> None:
    await log_in(user)
    await user.open("/")
    set_values(user, symbols="<b>bold</b>")
    await user.should_see("Symbols: '<b>bold</b>': symbol must be 1 to 32 characters", retries=5)
    await user.open("/jobs")
    set_values(user, **{"filter-symbol": "<i>x</i>"})
    await user.should_see("No jobs with symbol <i>x</i>.", retries=20)
    with user:
        assert not list(user.current_layout.descendants()) or not [
            element
            for element in user.current_layout.descendants()
            if isinstance(element, ui.html | ui.markdown)
        ]
