"""A job at a glance: status chip, progress bar, range, error, and its cancel and retry buttons.

Built once and then updated in place (`update`), so a progress change moves the bar without
rebuilding the row (which would flicker and lose the pointer's hover).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from urllib.parse import quote

from nicegui import ui

from backfill_readmodel.queries import ACTIVE_STATUSES
from backfill_readmodel.views import JobView
from backfill_ui import words

JobAction = Callable[[str], Awaitable[None]]


def job_path(job_id: str) -> str:
    # Ids from the API are UUIDs, but a command XADDed by hand may name its job anything.
    return f"/jobs/{quote(job_id, safe='')}"


def status_chip(status: str) -> ui.badge:
    return ui.badge(status, color=words.STATUS_COLORS.get(status, "grey")).mark(f"status-{status}")


def progress_text(job: JobView) -> str:
    p = job.progress
    if p.chunks_total == 0:
        if job.status == "succeeded":  # a plan of no chunk: its mode found nothing missing
            return "nothing to fetch: already stored, or no session in the range"
        return "not started" if job.status == "queued" else f"{p.bars_stored:,} bars"
    return f"{p.chunks_done} / {p.chunks_total} chunks · {p.bars_stored:,} bars · {p.percent:g} %"


def set_status(chip: ui.badge, status: str) -> None:
    chip.set_text(status)
    chip.props(f"color={words.STATUS_COLORS.get(status, 'grey')}")
    chip.mark(f"status-{status}")


class JobCard:
    def __init__(self, job: JobView, cancel: JobAction, retry: JobAction, now: datetime) -> None:
        self.job_id = job.job_id
        with ui.card().classes("w-full q-pa-sm").mark(f"job-{job.job_id}") as self.card:
            with ui.row().classes("w-full items-center no-wrap gap-3"):
                self.chip = status_chip(job.status)
                ui.link(job.symbol, job_path(job.job_id)).classes("text-subtitle1 text-bold")
                ui.label(f"{job.source} · {job.bar_size}").classes("text-grey-8")
                ui.label(f"{words.day(job.start)} → {words.day(job.end)}").classes("text-grey-8")
                ui.space()
                self.when = ui.label().classes("text-caption text-grey-7")
                self.cancel = (
                    ui.button("Cancel", icon="cancel", on_click=lambda: cancel(self.job_id))
                    .props("flat dense color=negative")
                    .mark(f"cancel-{job.job_id}")
                )
                self.retry = (
                    ui.button("Retry", icon="replay", on_click=lambda: retry(self.job_id))
                    .props("flat dense color=primary")
                    .mark(f"retry-{job.job_id}")
                )
            with ui.row().classes("w-full items-center no-wrap gap-3"):
                self.bar = (
                    ui.linear_progress(value=0, show_value=False)
                    .classes("col")
                    .props("instant-feedback")  # no easing: the bar shows the true figure
                )
                self.progress = ui.label().classes("text-caption").mark(f"progress-{job.job_id}")
            self.problem = ui.label().classes("text-negative text-caption")
            self.notice = ui.label().classes("text-warning text-caption")
        self.update(job, now)

    def update(self, job: JobView, now: datetime) -> None:
        self.job = job
        set_status(self.chip, job.status)
        self.bar.set_value(job.progress.percent / 100)
        self.bar.props(f"color={words.STATUS_COLORS.get(job.status, 'primary')}")
        self.progress.set_text(progress_text(job))
        self.when.set_text(self._when(job, now))
        active = job.status in ACTIVE_STATUSES
        self.cancel.set_visibility(active)
        self.retry.set_visibility(job.status in ("failed", "cancelled"))
        error = job.error
        text = "" if error is None else words.problem(error.outcome, error.message)
        self.problem.set_text(text)
        self.problem.set_visibility(bool(text) and job.status != "cancelled")
        waiting = words.waiting_words(job)
        self.notice.set_text(waiting)
        self.notice.set_visibility(bool(waiting))

    def tick(self, now: datetime) -> None:
        """Redraws "3 s ago" from the job already read: ages move without events."""
        self.when.set_text(self._when(self.job, now))

    @staticmethod
    def _when(job: JobView, now: datetime) -> str:
        if job.finished_at is not None and job.started_at is not None:
            took = words.duration((job.finished_at - job.started_at).total_seconds())
            return f"{job.status} {words.ago(job.finished_at, now)}, took {took}"
        if job.started_at is not None:
            return f"started {words.ago(job.started_at, now)}"
        return f"submitted {words.ago(job.submitted_at, now)}"
