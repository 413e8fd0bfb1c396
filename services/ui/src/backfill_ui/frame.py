"""The shell every page shares: header, navigation, logout, and the "your job ended" toasts."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

from nicegui import app, ui

from backfill_contracts import TERMINAL_EVENT_TYPES
from backfill_readmodel import monitoring
from backfill_readmodel.queries import TERMINAL_STATUSES
from backfill_readmodel.views import JobView
from backfill_ui import actions, auth
from backfill_ui.feed import Feed, JobWatch
from backfill_ui.live import LiveEvent
from backfill_ui.services import Services

NAV = (
    ("Collect", "/"),
    ("Jobs", "/jobs"),
    ("Coverage", "/coverage"),
    ("Universes", "/universes"),
    ("Schedules", "/schedules"),
    ("Monitoring", "/monitoring"),
    ("IBKR", "/ibkr"),
)
NotifyType = Literal["positive", "negative", "warning", "info"]
NOTIFY_TYPES: dict[str, NotifyType] = {
    "succeeded": "positive",
    "failed": "negative",
    "cancelled": "warning",
}


@dataclass(frozen=True, slots=True)
class Console:
    """What every page is given: the shared clients and the login gate."""

    services: Services
    gate: auth.Gate


@contextmanager
def frame(console: Console, title: str) -> Iterator[MutableMapping[str, Any]]:
    """Lays out the shell and yields the browser session's storage (taken while building:
    handlers and timers run outside the page's request)."""
    session = app.storage.user
    ui.page_title(f"{title} · Backfill")
    with ui.header().classes("items-center q-px-md q-py-sm"):
        ui.label("Backfill").classes("text-h6 q-mr-lg")
        for text, path in NAV:
            ui.link(text, path).classes("text-white text-subtitle1 no-underline q-mr-md")
        ui.space()
        if console.gate.open:
            ui.badge("open: no password set", color="warning").mark("open-mode")
        else:
            ui.button(
                "Log out", icon="logout", on_click=lambda: auth.log_out(console.gate, session)
            ).props("flat color=white").mark("logout")
    _toasts_for_endings(console, session)
    with ui.column().classes("w-full q-pa-md gap-4"):
        ui.label(title).classes("text-h5")
        yield session


def _toasts_for_endings(console: Console, session: MutableMapping[str, Any]) -> None:
    """A toast when a job submitted from this browser ends, on whichever page is open.

    Jobs that ended while no page was open get theirs when the next page opens.
    """
    watch = JobWatch()

    def watched(job_id: str) -> bool:
        return job_id in session.get(actions.WATCH_KEY, ())

    async def on_events(events: list[LiveEvent]) -> bool:
        watch.note_events(events, watched)
        if not watch:
            return False
        async with console.services.connect() as conn:
            _announce(session, (await watch.read(conn)).values())
        return bool(watch)

    async def on_open() -> None:
        ids = list(session.get(actions.WATCH_KEY, ()))
        if ids:
            async with console.services.connect() as conn:
                found = await monitoring.jobs_by_id(conn, ids)
            _announce(session, (tracked.view for tracked in found.values()))

    Feed(console.services.tail, on_events, accept=lambda event: event.type in TERMINAL_EVENT_TYPES)
    ui.timer(0.2, on_open, once=True)


def _announce(session: MutableMapping[str, Any], jobs: Iterable[JobView]) -> None:
    ended: set[str] = set()
    for job in jobs:
        if job.status in TERMINAL_STATUSES:
            ended.add(job.job_id)
            ui.notify(
                f"{job.symbol} ({job.source}, {job.bar_size}) {job.status}",
                type=NOTIFY_TYPES.get(job.status, "info"),
            )
    if ended:
        actions.unwatch(session, ended)
