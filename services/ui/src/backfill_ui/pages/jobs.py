"""Jobs (`/jobs`): the history, newest first, with statistics, filters and live progress."""

from __future__ import annotations

import contextlib
import dataclasses
import time
from datetime import UTC, date, datetime, timedelta
from urllib.parse import urlencode

from nicegui import ui
from sqlalchemy.ext.asyncio import AsyncConnection

from backfill_contracts import known_sources
from backfill_readmodel import monitoring, queries
from backfill_readmodel.views import JobPage
from backfill_ui import actions, words
from backfill_ui.components.job_card import JobCard
from backfill_ui.components.webhook_form import WebhookForm
from backfill_ui.feed import Feed, JobWatch
from backfill_ui.frame import Console, frame
from backfill_ui.live import RESYNC, LiveEvent

PAGE_SIZE = 25
AGES_EVERY_S = 5.0  # "finished 12 s ago" is redrawn this often
# Statistics are aggregate queries (a count of every bar): at most this often while jobs move.
STATS_EVERY_S = 2.0
ANY = "any"


def register(console: Console) -> None:
    @ui.page("/jobs")
    async def jobs_page(
        status: str = "", source: str = "", symbol: str = "", day: str = ""
    ) -> None:
        with frame(console, "Jobs"):
            page = JobsPage(console, status, source, symbol, day)
            await page.load()
            webhook = WebhookForm(console.services)
            await webhook.show()


class JobsPage:
    def __init__(self, console: Console, status: str, source: str, symbol: str, day: str) -> None:
        self.console = console
        self.cards: dict[str, JobCard] = {}
        self.cursors: list[str | None] = [None]  # the cursor of each page seen, for "newer"
        self.next_cursor: str | None = None
        self.watch = JobWatch()
        self.stats_stale = False
        self.stats_next = 0.0
        self.reload_due = False
        self.stats_box = ui.row().classes("w-full gap-4").mark("stats")
        with ui.row().classes("w-full items-center gap-4"):
            self.status = ui.select(
                [ANY, *words.STATUSES], value=status if status in words.STATUSES else ANY,
                label="Status", on_change=self.filters_changed,
            ).classes("w-36").mark("filter-status")  # fmt: skip
            self.source = ui.select(
                [ANY, *known_sources()], value=source if source in known_sources() else ANY,
                label="Source", on_change=self.filters_changed,
            ).classes("w-32").mark("filter-source")  # fmt: skip
            self.symbol = (
                ui.input("Symbol", value=symbol, on_change=self.filters_changed)
                .props("clearable debounce=300")
                .classes("w-40")
                .mark("filter-symbol")
            )
            self.day = ui.date_input(
                "Submitted on", value=day, on_change=self.filters_changed
            ).mark("filter-day")
        self.list_box = ui.column().classes("w-full gap-2").mark("job-list")
        with ui.row().classes("items-center gap-2"):
            self.newer = (
                ui.button("Newer", icon="chevron_left", on_click=self.newer_page)
                .props("flat")
                .mark("newer")
            )
            self.older = (
                ui.button("Older", icon="chevron_right", on_click=self.older_page)
                .props("flat")
                .mark("older")
            )
        Feed(console.services.tail, self.on_events)
        ui.timer(AGES_EVERY_S, self.tick)

    async def load(self) -> None:
        await self.show_stats()
        await self.show_page()

    # -- statistics ----------------------------------------------------------------------

    async def show_stats(self) -> None:
        now = datetime.now(UTC)
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        async with self.console.services.connect() as conn:
            stats = await queries.stats(conn)
            today = await monitoring.bars_collected_since(conn, midnight)
        self.stats_stale = False
        self.stats_next = time.monotonic() + STATS_EVERY_S
        by_status = stats.by_status
        active = sum(by_status.get(s, 0) for s in queries.ACTIVE_STATUSES)
        rate = "-" if stats.success_rate is None else f"{stats.success_rate * 100:.1f} %"
        self.stats_box.clear()
        with self.stats_box:
            _stat("Jobs", f"{stats.jobs_total:,}", "stat-total")
            _stat("Active", f"{active:,}", "stat-active")
            for status in ("succeeded", "failed", "cancelled"):
                _stat(status.capitalize(), f"{by_status.get(status, 0):,}", f"stat-{status}")
            _stat("Success rate", rate, "stat-success-rate")
            _stat("Mean duration", words.duration(stats.mean_duration_s), "stat-duration")
            _stat("Bars stored", f"{stats.bars_stored:,}", "stat-bars")
            _stat("Bars collected today", f"{today:,}", "stat-bars-today")
            with ui.card().classes("q-pa-sm").mark("stat-by-source"):
                ui.label("By source").classes("text-caption text-grey-7")
                for source, counts in sorted(stats.by_source.items()):
                    parts = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
                    ui.label(f"{source}: {parts}").classes("text-body2")

    # -- the list --------------------------------------------------------------------

    def filters(self) -> tuple[queries.JobFilter, date | None]:
        day = None
        with contextlib.suppress(ValueError):  # a half-typed date filters nothing yet
            day = date.fromisoformat(self.day.value) if self.day.value else None
        return (
            queries.JobFilter(
                status=None if self.status.value == ANY else self.status.value,
                source=None if self.source.value == ANY else self.source.value,
                symbol=(self.symbol.value or "").strip() or None,
            ),
            day,
        )

    async def filters_changed(self) -> None:
        self.cursors = [None]
        job_filter, day = self.filters()
        query = {
            "status": job_filter.status,
            "source": job_filter.source,
            "symbol": job_filter.symbol,
            "day": day.isoformat() if day else None,
        }
        # The address keeps the filters: a reload or a shared link shows the same list.
        ui.navigate.history.replace("/jobs?" + urlencode({k: v for k, v in query.items() if v}))
        await self.show_page()

    async def newer_page(self) -> None:
        if len(self.cursors) > 1:
            self.cursors.pop()
            await self.show_page()

    async def older_page(self) -> None:
        if self.next_cursor is not None:
            self.cursors.append(self.next_cursor)
            await self.show_page()

    async def show_page(self) -> None:
        job_filter, day = self.filters()
        async with self.console.services.connect() as conn:
            page = await _page(conn, job_filter, day, self.cursors[-1])
            await queries.add_waiting_notices(
                conn, page, datetime.now(UTC), self.console.services.settings.worker_timeout_s
            )
        self.next_cursor = page.next_cursor
        self.cards = {}
        self.list_box.clear()
        now = datetime.now(UTC)
        with self.list_box:
            if not page.jobs:
                ui.label(_nothing_words(job_filter, day)).classes("text-grey-7").mark("no-jobs")
            for job in page.jobs:
                self.cards[job.job_id] = JobCard(job, self.cancel, self.retry, now)
        self.newer.set_enabled(len(self.cursors) > 1)
        self.older.set_enabled(page.next_cursor is not None)

    def tick(self) -> None:
        now = datetime.now(UTC)
        for card in self.cards.values():
            card.tick(now)

    # -- live ------------------------------------------------------------------------

    async def on_events(self, events: list[LiveEvent]) -> bool:
        first_page = len(self.cursors) == 1

        def shown_or_new(job_id: str) -> bool:
            # A job not listed yet may belong at the top: read it once the projector has it.
            return job_id in self.cards or first_page

        for event in events:
            if event.type == RESYNC:
                self.reload_due = True
            if event.type.startswith(("job.", "chunk.collected")) or event.type == RESYNC:
                self.stats_stale = True
        self.watch.note_events(
            (e for e in events if e.job_id in self.cards or e.type == "job.submitted"),
            shown_or_new,
        )
        if self.watch and not self.reload_due:
            async with self.console.services.connect() as conn:
                ready = await self.watch.read(conn)
                page = JobPage(jobs=list(ready.values()), next_cursor=None)
                await queries.add_waiting_notices(
                    conn, page, datetime.now(UTC), self.console.services.settings.worker_timeout_s
                )
            now = datetime.now(UTC)
            for job_id, job in ready.items():
                if job_id in self.cards:
                    self.cards[job_id].update(job, now)
                else:
                    self.reload_due = True  # a new job: the page is read again, in order
        if self.reload_due:
            self.reload_due = False
            await self.show_page()
        if self.stats_stale and time.monotonic() >= self.stats_next:
            await self.show_stats()
        return bool(self.watch) or self.stats_stale

    async def cancel(self, job_id: str) -> None:
        _tell(await actions.cancel(self.console.services, job_id))

    async def retry(self, job_id: str) -> None:
        _tell(await actions.retry(self.console.services, job_id))


async def _page(
    conn: AsyncConnection, job_filter: queries.JobFilter, day: date | None, cursor: str | None
) -> JobPage:
    """A page of jobs, newest first; with a day, those submitted on that day (UTC)."""
    if day is not None:
        day_start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        job_filter = dataclasses.replace(
            job_filter, submitted_from=day_start, submitted_before=day_start + timedelta(days=1)
        )
    return await queries.list_jobs(conn, job_filter, limit=PAGE_SIZE, cursor=cursor)


def _stat(title: str, value: str, marker: str) -> None:
    with ui.card().classes("q-pa-sm").mark(marker):
        ui.label(title).classes("text-caption text-grey-7")
        ui.label(value).classes("text-h6")


def _nothing_words(job_filter: queries.JobFilter, day: date | None) -> str:
    parts = [
        f"status {job_filter.status}" if job_filter.status else "",
        f"source {job_filter.source}" if job_filter.source else "",
        f"symbol {job_filter.symbol}" if job_filter.symbol else "",
        f"submitted on {day.isoformat()}" if day else "",
    ]
    chosen = ", ".join(part for part in parts if part)
    return f"No jobs with {chosen}." if chosen else "No jobs yet: submit one on the Collect page."


def _tell(outcome: actions.Outcome) -> None:
    ui.notify(outcome.message, type="positive" if outcome.ok else "warning")
