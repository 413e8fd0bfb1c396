"""Jobs: history newest first, statistics, filters, live progress, cancel and retry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from nicegui.testing import User

from backfill_ui.settings import UiSettings
from services.ui.tests.conftest import console_user
from services.ui.tests.console import (
    enabled,
    eventually,
    log_in,
    set_values,
    texts,
)
from tests.support.events import all_events, append, job_life, wait_folded
from tests.support.stack import Stack

DAILY = {"source": "sim", "bar_size": "1d", "start": "2024-01-01", "end": "2024-03-01"}
# 1-minute bars over ten weekdays: ten chunks, slow enough to watch.
SLOW = {
    "source": "sim",
    "bar_size": "1m",
    "start": "2024-01-01",
    "end": "2024-01-13",
    "options": {"latency_ms": 150},
}


def cards(user: User) -> list[str]:
    """The job ids of the listed jobs, top to bottom."""
    with user:
        listed = user.find(marker="job-list").elements.pop()
        return [
            marker.removeprefix("job-")
            for element in listed.descendants()
            for marker in element._markers
            if marker.startswith("job-") and marker != "job-list"
        ]


def stat(user: User, name: str) -> str:
    return texts(user, f"stat-{name}")[1]


async def test_history_statistics_and_filters(user: User, stack: Stack) -> None:
    first = await stack.submit(symbol="AAPL", **DAILY)
    second = await stack.submit(symbol="MSFT", **DAILY)
    failed = await stack.submit(symbol="INVALID", **DAILY)
    for job_id in (first, second, failed):
        await stack.wait_job(job_id)
    await log_in(user)
    await user.open("/jobs")
    await eventually(lambda: _equal(cards(user), [failed, second, first]), what="newest first")
    assert stat(user, "total") == "3"
    assert stat(user, "succeeded") == "2"
    assert stat(user, "failed") == "1"
    assert stat(user, "success-rate") == "66.7 %"
    assert stat(user, "bars") == "88"  # 2 x 44 weekdays
    assert stat(user, "bars-today") == "88"
    await user.should_see("the source does not know this symbol: unknown symbol 'INVALID'")

    def show(**values: str) -> None:
        set_values(user, **{f"filter-{name}": value for name, value in values.items()})

    show(status="failed")
    await eventually(lambda: _equal(cards(user), [failed]), what="status filter")
    show(status="any", symbol="AAPL")
    await eventually(lambda: _equal(cards(user), [first]), what="symbol filter")
    show(symbol="", source="yahoo")
    await eventually(lambda: _equal(cards(user), []), what="source filter")
    await user.should_see("No jobs with source yahoo.")
    show(source="sim", day="2020-01-01")
    await eventually(lambda: _equal(cards(user), []), what="day filter")
    show(day=_today())
    await eventually(lambda: _equal(cards(user), [failed, second, first]), what="today")


def _equal(seen: list[str], wanted: list[str]) -> None:
    assert seen == wanted, seen


def _today() -> str:
    return datetime.now(UTC).date().isoformat()


async def test_progress_is_pushed_while_the_page_is_open(user: User, stack: Stack) -> None:
    await log_in(user)
    await user.open("/jobs")
    job_id = await stack.submit(symbol="LIVE", **SLOW)
    await user.should_see(marker=f"job-{job_id}", retries=30)  # a new job appears by itself
    seen: set[str] = set()

    def finished() -> None:
        text = texts(user, f"progress-{job_id}")[0]
        seen.add(text.split(" chunks")[0])
        assert text.startswith("10 / 10 chunks · 3,900 bars · 100 %"), text

    await eventually(finished, within=30, what="progress at 100 %")
    assert len(seen) >= 4, seen  # it moved chunk by chunk, not in one jump
    await user.should_see(marker="status-succeeded")


async def test_cancel_and_retry_from_the_list(user: User, stack: Stack) -> None:
    job_id = await stack.submit(symbol="STOPME", **SLOW)
    await stack.wait_job(job_id, {"running"})
    await log_in(user)
    await user.open("/jobs")
    await user.should_see(marker=f"cancel-{job_id}", retries=30)
    user.find(marker=f"cancel-{job_id}").click()
    assert (await stack.wait_job(job_id))["status"] == "cancelled"
    await user.should_see(marker="status-cancelled", retries=30)
    user.find(marker=f"retry-{job_id}").click()
    await stack.wait_job(job_id, {"queued", "running"}, timeout=10)
    finished = await stack.wait_job(job_id)
    assert finished["status"] == "succeeded"
    assert finished["attempt"] == 2
    assert finished["progress"]["chunks_done"] == 10
    await user.should_see(marker="status-succeeded", retries=30)


async def test_a_console_restart_changes_nothing(stack: Stack, ui_settings: UiSettings) -> None:
    done = [await stack.submit(symbol=symbol, **DAILY) for symbol in ("AAA", "BBB")]
    for job_id in done:
        await stack.wait_job(job_id)
    async with console_user(ui_settings) as user:
        await log_in(user)
        await user.open("/jobs")
        await user.should_see(marker=f"job-{done[0]}", retries=30)
        before = (cards(user), texts(user, "job-list"), stat(user, "total"))
    # A second console, built from scratch as a restarted process would be.
    async with console_user(ui_settings) as again:
        await log_in(again)
        await again.open("/jobs")
        await again.should_see(marker=f"job-{done[0]}", retries=30)
        after = (cards(again), texts(again, "job-list"), stat(again, "total"))
    assert after[0] == before[0] == done[::-1]
    assert [t for t in after[1] if "ago" not in t] == [t for t in before[1] if "ago" not in t]
    assert after[2] == before[2] == "2"


async def test_older_and_newer_pages(user: User, stack: Stack) -> None:
    start = datetime.now(UTC) - timedelta(hours=1)
    lives = [job_life(f"page-{n:02d}", start + timedelta(minutes=n), "queued") for n in range(30)]
    await append(stack.redis, stack.names, all_events(*lives))
    await wait_folded(stack.engine, "page-29", 1)
    await log_in(user)
    await user.open("/jobs")
    newest = [f"page-{n:02d}" for n in range(29, 4, -1)]
    await eventually(lambda: _equal(cards(user), newest), what="the first page")
    user.find(marker="older").click()
    oldest = ["page-04", "page-03", "page-02", "page-01", "page-00"]
    await eventually(lambda: _equal(cards(user), oldest), what="the second page")
    assert not enabled(user, "older")
    user.find(marker="newer").click()
    await eventually(lambda: _equal(cards(user), newest), what="back to the first page")
