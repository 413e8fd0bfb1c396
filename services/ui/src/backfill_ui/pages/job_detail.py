"""Job detail (`/jobs/{job_id}`): parameters, chunk grid, bars chart, downloads and timeline."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

from nicegui import ui

from backfill_readmodel import queries
from backfill_readmodel.views import ChunkView, JobEventView, JobView
from backfill_ui import actions, downloads, words
from backfill_ui.components import charts
from backfill_ui.components.job_card import progress_text, set_status, status_chip
from backfill_ui.feed import Feed, JobWatch
from backfill_ui.frame import Console, frame
from backfill_ui.live import RESYNC, LiveEvent

TIMELINE_LIMIT = 200  # newest events shown; a long job has thousands
SLOW_PARTS_EVERY_S = 1.0  # chunks and timeline re-read at most this often while running
CHART_EVERY_S = 3.0  # the chart re-reads every bar: less often
MISSING_JOB_POLL_S = 0.5  # an unknown job is looked for again this often...
MISSING_JOB_WAIT_S = 60.0  # ...for this long: the projector is seconds behind at worst


def register(console: Console) -> None:
    @ui.page("/jobs/{job_id}")
    async def job_page(job_id: str) -> None:
        with frame(console, "Job"):
            async with console.services.connect() as conn:
                job = await queries.get_job(conn, job_id)
            if job is not None:
                await _show(console, job)
                return
            # A job opened the moment it was submitted is on the log before the projector has
            # folded it: the page waits for it rather than saying it does not exist.
            holder = ui.column().classes("w-full")
            with holder:
                missing = ui.label().mark("no-job")
                ui.link("All jobs", "/jobs")
            waited_since = time.monotonic()

            async def look_again() -> None:
                async with console.services.connect() as conn:
                    found = await queries.get_job(conn, job_id)
                if found is not None:
                    timer.cancel()
                    holder.clear()
                    with holder:
                        await _show(console, found)
                    return
                submitted = await console.services.redis.exists(
                    console.services.names.job_key(job_id, "submitted")
                )
                missing.set_text(
                    f"Job {job_id} was submitted: waiting for it to reach the read model…"
                    if submitted
                    else f"There is no job {job_id}."
                )
                if time.monotonic() - waited_since > MISSING_JOB_WAIT_S:
                    timer.cancel()

            timer = ui.timer(MISSING_JOB_POLL_S, look_again)
            await look_again()


async def _show(console: Console, job: JobView) -> None:
    page = JobDetail(console, job)
    await page.refresh_parts()
    ui.timer(0.05, page.refresh_chart, once=True)  # after the page is on screen


class JobDetail:
    def __init__(self, console: Console, job: JobView) -> None:
        self.console = console
        self.job = job
        self.watch = JobWatch()
        self.parts_stale = False
        self.parts_next = 0.0
        self.chart_stale = False
        self.chart_next = 0.0
        self.parameter_values: dict[str, ui.label] = {}
        with ui.row().classes("w-full items-center gap-3"):
            ui.label(job.symbol).classes("text-h5").mark("job-symbol")
            self.chip = status_chip(job.status)
            ui.label(f"{job.source} · {job.bar_size}").classes("text-grey-8")
            ui.space()
            self.cancel_button = (
                ui.button("Cancel", icon="cancel", on_click=self.cancel)
                .props("flat color=negative")
                .mark("cancel-button")
            )
            self.retry_button = (
                ui.button("Retry", icon="replay", on_click=self.retry)
                .props("flat color=primary")
                .mark("retry-button")
            )
            for kind, path in (
                ("CSV", downloads.csv_path(job.job_id)),
                ("Parquet", downloads.parquet_path(job.job_id)),
            ):
                link = ui.button(kind, icon="download").props("flat tag=a download")
                link.props["href"] = path  # set, not parsed from a props string
                link.mark(f"download-{kind.lower()}")
        with ui.row().classes("w-full items-center no-wrap gap-3"):
            self.bar = (
                ui.linear_progress(value=0, show_value=False)
                .classes("col")
                .props("instant-feedback")  # no easing: the bar shows the true figure
            )
            self.progress = ui.label().mark("progress")
        self.error = ui.label().classes("text-negative text-body1").mark("job-error")
        self.notice = ui.label().classes("text-warning").mark("job-notice")
        with ui.row().classes("w-full items-start gap-4"):
            with ui.card().classes("q-pa-md").mark("parameters"):
                ui.label("Parameters").classes("text-subtitle1")
                self.parameters = ui.column().classes("gap-0")
            with ui.card().classes("col q-pa-md"):
                ui.label("Chunks").classes("text-subtitle1")
                self.grid = ui.echart(charts.chunk_grid_options([])).mark("chunk-grid")
                self.chunk_problems = ui.column().classes("gap-0").mark("chunk-problems")
        with ui.card().classes("w-full q-pa-md"):
            ui.label("Bars").classes("text-subtitle1")
            self.chart_note = ui.label("loading…").classes("text-caption").mark("chart-note")
            self.chart = ui.echart(charts.candles_options([])).classes("w-full").mark("chart")
            self.chart.style("height: 420px")
        with ui.card().classes("w-full q-pa-md"):
            ui.label("Timeline (newest first)").classes("text-subtitle1")
            self.timeline = ui.column().classes("gap-0").mark("timeline")
        self.show_job(job)
        Feed(
            console.services.tail,
            self.on_events,
            accept=lambda event: event.job_id == job.job_id,
        )

    # -- the job's own row: pushed on every event -----------------------------------------

    def show_job(self, job: JobView) -> None:
        self.job = job
        set_status(self.chip, job.status)
        self.bar.set_value(job.progress.percent / 100)
        self.bar.props(f"color={words.STATUS_COLORS.get(job.status, 'primary')}")
        self.progress.set_text(progress_text(job))
        error = job.error
        text = "" if error is None else words.problem(error.outcome, error.message)
        self.error.set_text(f"Why: {text}" if text else "")
        self.error.set_visibility(bool(text))
        waiting = words.waiting_words(job)
        self.notice.set_text(waiting)
        self.notice.set_visibility(bool(waiting))
        self.cancel_button.set_visibility(job.status in queries.ACTIVE_STATUSES)
        self.retry_button.set_visibility(job.status in ("failed", "cancelled"))
        for name, value in _parameters(job):
            if name not in self.parameter_values:  # built once, then updated in place
                with self.parameters, ui.row().classes("gap-2 no-wrap"):
                    ui.label(name).classes("text-grey-7 w-28")
                    marker = f"param-{name.lower().replace(' ', '-')}"
                    self.parameter_values[name] = ui.label().mark(marker)
            self.parameter_values[name].set_text(value)

    async def on_events(self, events: list[LiveEvent]) -> bool:
        now = time.monotonic()
        for event in events:
            if event.type == RESYNC or event.job_id == self.job.job_id:
                self.watch.note(self.job.job_id, event.seq)
                self.parts_stale = True
                self.chart_stale = self.chart_stale or event.type != "chunk.failed"
        if self.watch:
            async with self.console.services.connect() as conn:
                ready = await self.watch.read(conn)
                if self.job.job_id in ready:
                    job = ready[self.job.job_id]
                    if job.status == "queued":
                        timeout = self.console.services.settings.worker_timeout_s
                        now_utc = datetime.now(UTC)
                        job.notice = await queries.waiting_notice(conn, job, now_utc, timeout)
                    self.show_job(job)
        ended = self.job.status in queries.TERMINAL_STATUSES  # the final state, at once
        if self.parts_stale and (now >= self.parts_next or ended) and not self.watch:
            await self.refresh_parts()
        if self.chart_stale and (now >= self.chart_next or ended) and not self.watch:
            await self.refresh_chart()
        return bool(self.watch) or self.parts_stale or self.chart_stale

    # -- chunks, timeline and chart: re-read less often ------------------------------------

    async def refresh_parts(self) -> None:
        async with self.console.services.connect() as conn:
            chunks = await queries.job_chunks_of(conn, self.job.job_id)
            events = await queries.job_events_of(conn, self.job.job_id)
        self.parts_stale = False
        self.parts_next = time.monotonic() + SLOW_PARTS_EVERY_S
        self.show_chunks(chunks)
        self.show_timeline(events)

    def show_chunks(self, chunks: list[ChunkView]) -> None:
        self.grid.options.clear()
        self.grid.options.update(charts.chunk_grid_options(chunks))
        self.grid.style(f"height: {charts.chunk_grid_height(len(chunks))}px")
        self.grid.update()
        self.chunk_problems.clear()
        with self.chunk_problems:
            if not chunks:
                ui.label("No plan yet: the chunks appear when a worker starts the job.").classes(
                    "text-grey-7"
                )
            for chunk in chunks:
                if chunk.status in ("failed", "retrying", "waiting") and chunk.message:
                    tries = f" after {chunk.tries} tries" if chunk.tries else ""
                    status = words.CHUNK_WORDS.get(chunk.status, chunk.status)
                    ui.label(
                        f"Chunk {chunk.chunk} ({words.day(chunk.start)}): {status}{tries}: "
                        f"{words.problem(chunk.outcome, chunk.message)}"
                    ).classes("text-caption")

    def show_timeline(self, events: list[JobEventView]) -> None:
        self.timeline.clear()
        with self.timeline:
            newest = list(reversed(events))[:TIMELINE_LIMIT]
            for event in newest:
                with ui.row().classes("gap-3 no-wrap items-baseline"):
                    ui.label(words.when(event.ts)).classes("text-caption text-grey-7 w-44")
                    ui.label(f"#{event.seq}").classes("text-caption text-grey-7 w-10")
                    ui.label(words.event_words(event.type, event.data, event.attempt)).mark(
                        f"event-{event.type}"
                    )
            if len(events) > TIMELINE_LIMIT:
                ui.label(f"… and {len(events) - TIMELINE_LIMIT} earlier event(s)").classes(
                    "text-caption text-grey-7"
                )

    async def refresh_chart(self) -> None:
        async with self.console.services.connect() as conn:
            bars = await queries.bars_of(conn, downloads.bar_query(self.job))
        self.chart_stale = False
        self.chart_next = time.monotonic() + CHART_EVERY_S
        candles, k = charts.merge_bars(bars)
        self.chart.options.clear()
        self.chart.options.update(charts.candles_options(candles))
        self.chart.update()
        if not bars:
            self.chart_note.set_text("No bars stored for this job's range yet.")
        elif k == 1:
            self.chart_note.set_text(f"{len(bars):,} bars")
        else:
            self.chart_note.set_text(
                f"{len(bars):,} bars, drawn as {len(candles):,} candles of {k} bars each"
            )

    # -- actions -------------------------------------------------------------------------

    async def cancel(self) -> None:
        _tell(await actions.cancel(self.console.services, self.job.job_id))

    async def retry(self) -> None:
        _tell(await actions.retry(self.console.services, self.job.job_id))


def _parameters(job: JobView) -> list[tuple[str, str]]:
    took = None
    if job.started_at is not None and job.finished_at is not None:
        took = (job.finished_at - job.started_at).total_seconds()
    return [
        ("Job", job.job_id),
        ("Source", job.source),
        ("Symbol", job.symbol),
        ("Instrument", job.instrument or job.symbol),
        ("Bar size", job.bar_size),
        ("Start", words.when(job.start)),
        ("End", f"{words.when(job.end)} (exclusive)"),
        ("Options", json.dumps(job.options, sort_keys=True) if job.options else "none"),
        ("Price type", job.price_type or "-"),
        ("Attempt", str(job.attempt)),
        ("Worker", job.worker_id or "-"),
        ("Submitted", words.when(job.submitted_at)),
        ("Started", words.when(job.started_at)),
        ("Finished", words.when(job.finished_at)),
        ("Duration", words.duration(took)),
    ]


def _tell(outcome: actions.Outcome) -> None:
    ui.notify(outcome.message, type="positive" if outcome.ok else "warning")
