"""Monitoring (`/monitoring`): workers, streams, budgets, throughput and dead letters.

Everything is read from the projections and from Redis on every refresh: a restarted console
shows exactly what it showed before (Flower forgot its workers and tasks on restart).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from nicegui import ui
from redis.exceptions import RedisError

from backfill_readmodel import monitoring, queries
from backfill_readmodel.views import WorkerView
from backfill_ui import streams, words
from backfill_ui.components import charts
from backfill_ui.components.job_card import job_path
from backfill_ui.components.worker_info import info_lines, show_lines
from backfill_ui.feed import Feed, tolerant
from backfill_ui.frame import Console, frame
from backfill_ui.live import RESYNC, LiveEvent

REDIS_EVERY_S = 2.0  # stream lengths, pending and lag: a few cheap XINFO calls
WORKERS_EVERY_S = 5.0  # "last heartbeat … ago" ages even with no event
THROUGHPUT_EVERY_S = 10.0  # an hour of chunk events: read seldom


def register(console: Console) -> None:
    @ui.page("/monitoring")
    async def monitoring_page() -> None:
        with frame(console, "Monitoring"):
            page = MonitoringPage(console)
            await page.show_workers()
            await page.show_redis()
            await page.show_throughput()


class MonitoringPage:
    def __init__(self, console: Console) -> None:
        self.console = console
        self.workers_next = 0.0
        self.workers_stale = False
        ui.label("Workers").classes("text-h6")
        self.workers = ui.column().classes("w-full gap-2").mark("workers")
        ui.label("Streams").classes("text-h6")
        self.streams = ui.column().classes("w-full gap-2").mark("streams")
        ui.label("Throughput, last hour").classes("text-h6")
        self.throughput = ui.echart(charts.throughput_options([])).classes("w-full")
        self.throughput.style("height: 260px").mark("throughput")
        self.throughput_note = ui.label().classes("text-caption").mark("throughput-note")
        ui.label("Dead letters (newest first)").classes("text-h6")
        self.dlq = ui.column().classes("w-full gap-2").mark("dlq")
        ui.timer(REDIS_EVERY_S, tolerant(self.show_redis))
        ui.timer(WORKERS_EVERY_S, tolerant(self.show_workers))
        ui.timer(THROUGHPUT_EVERY_S, tolerant(self.show_throughput))
        Feed(
            console.services.tail,
            self.on_events,
            accept=lambda event: event.type == "worker.heartbeat",
        )

    async def on_events(self, events: list[LiveEvent]) -> bool:
        if any(event.type in ("worker.heartbeat", RESYNC) for event in events):
            self.workers_stale = True
        # Heartbeats come every few seconds per worker: one read for a burst of them.
        if self.workers_stale and time.monotonic() >= self.workers_next:
            await self.show_workers()
        return self.workers_stale

    async def show_workers(self) -> None:
        now = datetime.now(UTC)
        timeout = self.console.services.settings.worker_timeout_s
        async with self.console.services.connect() as conn:
            found = await queries.list_workers(conn, now, timeout)
        self.workers_stale = False
        self.workers_next = time.monotonic() + 0.5
        self.workers.clear()
        with self.workers:
            if not found:
                ui.label("No worker has ever sent a heartbeat.").classes("text-grey-7")
            _budgets(found)
            for worker in found:
                _worker_card(worker, now)

    async def show_redis(self) -> None:
        services = self.console.services
        try:
            infos = await streams.all_streams(services.redis, services.names)
            letters = await streams.dead_letters(services.redis, services.names)
        except (RedisError, OSError) as error:
            self.streams.clear()
            with self.streams:
                ui.label(f"Redis is unavailable ({type(error).__name__}); retrying.").classes(
                    "text-negative"
                )
            return
        self.streams.clear()
        with self.streams:
            for info in infos:
                _stream_row(info)
        self.dlq.clear()
        with self.dlq:
            if not letters:
                ui.label("No dead letters: every entry was usable.").classes("text-grey-7")
            for letter in letters:
                with ui.card().classes("w-full q-pa-sm").mark(f"dead-letter-{letter.entry_id}"):
                    ui.label(letter.reason).classes("text-negative").mark("dlq-reason")
                    ui.label(
                        f"{letter.at} · from {letter.stream} entry {letter.original_id}"
                        f" · dlq entry {letter.entry_id}"
                    ).classes("text-caption text-grey-7")
                    ui.label(letter.payload).classes("text-caption font-mono break-all")

    async def show_throughput(self) -> None:
        async with self.console.services.connect() as conn:
            points = await monitoring.throughput(conn, datetime.now(UTC))
        self.throughput.options.clear()
        self.throughput.options.update(charts.throughput_options(points))
        self.throughput.update()
        chunks = sum(p.chunks for p in points)
        bars = sum(p.bars for p in points)
        self.throughput_note.set_text(
            f"{chunks:,} chunks and {bars:,} bars in the last hour "
            f"(latest minute: {points[-1].chunks} chunks, {points[-1].bars:,} bars)"
        )


def _budgets(found: list[WorkerView]) -> None:
    """Each source's shared budgets, as its newest live heartbeat reports them.

    Pacing lives in Redis and is shared by every worker of a source, so one report is enough.
    """
    newest: dict[str, WorkerView] = {}
    for worker in found:  # newest heartbeat first
        if worker.alive and worker.source not in newest:
            newest[worker.source] = worker
    for source, worker in sorted(newest.items()):
        lines = [
            line
            for line in info_lines(worker.info)
            if line.label.startswith(("pacing", "Yahoo", "IB Gateway"))
        ]
        if lines:
            with ui.card().classes("q-pa-sm").mark(f"budget-{source}"):
                ui.label(f"{source}: budgets in use").classes("text-subtitle2")
                show_lines(lines)


def _worker_card(worker: WorkerView, now: datetime) -> None:
    with ui.card().classes("w-full q-pa-sm").mark(f"worker-{worker.worker_id}"):
        with ui.row().classes("w-full items-center gap-3"):
            ui.badge(
                "alive" if worker.alive else "silent", color="positive" if worker.alive else "grey"
            )
            ui.label(worker.worker_id).classes("text-bold")
            ui.label(f"{worker.source} · {worker.host} (pid {worker.pid})").classes("text-grey-8")
            ui.label(f"state {worker.state}").mark("worker-state")
            if worker.current_job:
                ui.link(f"job {worker.current_job}", job_path(worker.current_job))
            ui.space()
            ui.label(
                f"last heartbeat {words.ago(worker.last_heartbeat, now)} · "
                f"up since {words.when(worker.started_at)}"
            ).classes("text-caption text-grey-7")
        show_lines(info_lines(worker.info))


def _stream_row(info: streams.StreamInfo) -> None:
    with ui.card().classes("w-full q-pa-sm").mark(f"stream-{info.name}"):
        with ui.row().classes("items-center gap-3"):
            ui.label(info.name).classes("text-bold font-mono")
            ui.label(info.role).classes("text-grey-8")
            if not info.exists:
                ui.label("not created yet (nothing sent on it)").classes("text-grey-7")
                return
            ui.label(f"length {info.length:,}").mark("stream-length")
            ui.label(f"last entry {info.last_entry}").classes("text-caption text-grey-7")
        for group in info.groups:
            lag = "unknown" if group.lag is None else f"{group.lag:,}"
            ui.label(
                f"group {group.name}: {group.consumers} consumer(s), "
                f"pending {group.pending:,}, lag {lag}, last delivered {group.last_delivered}"
            ).classes("text-body2").mark(f"group-{group.name}")
        if not info.groups:
            ui.label("no consumer group").classes("text-caption text-grey-7")
