"""Schedules (`/schedules`): define one, see each one's next tick and last run, pause, resume,
run now, delete.

The same Redis store and the same firing code as the API and the projector's scheduler
(backfill_bus.schedules), so what is defined here fires exactly as one defined through the API.
A bad definition is refused with its reasons beside the form, which keeps what was typed.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from nicegui import ui
from pydantic import ValidationError

from backfill_bus import IdempotencyConflictError
from backfill_bus.schedules import (
    Schedule,
    ScheduleStore,
    ScheduleView,
    UnknownUniverseError,
    trigger,
    view_of,
)
from backfill_bus.universes import UniverseStore
from backfill_contracts import JobMode, utc_now
from backfill_ui.feed import tolerant
from backfill_ui.frame import Console, frame

REFRESH_EVERY_S = 2.0
MODES = {JobMode.TOP_UP.value: "top up", JobMode.FILL_GAPS.value: "fill gaps", "full": "full"}


def register(console: Console) -> None:
    @ui.page("/schedules")
    async def schedules_page() -> None:
        with frame(console, "Schedules"):
            page = SchedulesPage(console)
            await page.refresh()


class SchedulesPage:
    def __init__(self, console: Console) -> None:
        services = console.services
        self.commands = services.commands
        self.store = ScheduleStore(services.redis, services.names)
        self.universes = UniverseStore(services.redis, services.names)
        self._form()
        self.box = ui.column().classes("w-full gap-4").mark("schedules")
        ui.timer(REFRESH_EVERY_S, tolerant(self.refresh))

    def _form(self) -> None:
        with ui.card().classes("w-full max-w-4xl"):
            ui.label("Define a schedule (the same name again replaces it)").classes(
                "text-subtitle1"
            )
            with ui.row().classes("w-full items-start gap-4"):
                self.name = ui.input("Name", placeholder="megacaps-daily").mark("name")
                self.universe = ui.select([], label="Universe").classes("w-48").mark("universe")
                self.cron = (
                    ui.input("Cron (minute hour day month weekday)", value="30 16 * * 1-5")
                    .classes("w-64")
                    .mark("cron")
                )
                self.timezone = ui.input("Timezone", value="America/New_York").mark("timezone")
                self.mode = (
                    ui.select(MODES, value=JobMode.TOP_UP.value, label="Mode")
                    .classes("w-32")
                    .mark("mode")
                )
            self.description = (
                ui.input("Description (optional)").classes("w-full").mark("description")
            )
            with ui.row().classes("items-center gap-4"):
                ui.button("Save", icon="save", on_click=self.save).mark("save")
                self.problems = ui.column().classes("gap-0 text-negative").mark("problems")

    async def save(self) -> None:
        self.problems.clear()
        try:
            schedule = Schedule(
                name=(self.name.value or "").strip(),
                universe=self.universe.value or "",
                cron=self.cron.value or "",
                timezone=(self.timezone.value or "").strip(),
                mode=self.mode.value,
                description=(self.description.value or "").strip() or None,
            )
        except ValidationError as error:
            self._say(
                f"{'.'.join(map(str, e['loc']))}: {e['msg'].removeprefix('Value error, ')}"
                for e in error.errors(include_url=False)
            )
            return
        if await self.universes.get(schedule.universe) is None:
            self._say([f"universe: no universe {schedule.universe!r}; define it first"])
            return
        created = await self.store.put(schedule, utc_now())
        ui.notify(
            f"schedule {schedule.name} {'created' if created else 'replaced'}", type="positive"
        )
        await self.refresh()

    def _say(self, problems: Iterable[str]) -> None:
        with self.problems:
            for problem in problems:
                ui.label(problem)

    async def refresh(self) -> None:
        now = utc_now()
        names = [u.name for u in await self.universes.all()]
        chosen = self.universe.value if self.universe.value in names else None
        self.universe.set_options(names, value=chosen)
        views = [view_of(s, await self.store.state(s.name), now) for s in await self.store.all()]
        self.box.clear()
        with self.box:
            if not views:
                ui.label(
                    "No schedule yet: define one above, with `backfill schedule create` or "
                    "PUT /api/v1/schedules/{name}."
                ).mark("no-schedules")
            for view in views:
                self._card(view)

    def _card(self, view: ScheduleView) -> None:
        name = view.name
        with ui.card().classes("w-full").mark(f"schedule-{name}"):
            with ui.row().classes("w-full items-center gap-4"):
                ui.label(name).classes("text-h6")
                ui.label(f"universe {view.universe} · {MODES[view.mode.value]}")
                if view.paused:
                    ui.badge("paused", color="warning").mark(f"paused-{name}")
                ui.space()
                if view.paused:
                    ui.button("Resume", icon="play_arrow", on_click=lambda: self.resume(name)).mark(
                        f"resume-{name}"
                    )
                else:
                    ui.button("Pause", icon="pause", on_click=lambda: self.pause(name)).mark(
                        f"pause-{name}"
                    )
                ui.button("Run now", icon="bolt", on_click=lambda: self.run_now(name)).props(
                    "outline"
                ).mark(f"trigger-{name}")
                ui.button(icon="delete", on_click=lambda: self.delete(name)).props(
                    "flat color=negative"
                ).mark(f"delete-{name}")
            ui.label(f"{view.explained} · cron '{view.cron}'").mark(f"when-{name}")
            ui.label(
                f"next tick: {_when(view.next_tick) if not view.paused else 'none (paused)'}"
                f"  ·  last tick: {_when(view.last_tick)}"
                f"  ·  last run: {view.last_run_id or 'none yet'}"
            ).classes("text-caption").mark(f"state-{name}")
            if view.last_error:
                ui.label(f"cannot fire: {view.last_error}").classes("text-negative").mark(
                    f"error-{name}"
                )

    async def pause(self, name: str) -> None:
        await self.store.pause(name)
        await self.refresh()

    async def resume(self, name: str) -> None:
        await self.store.resume(name, utc_now())
        await self.refresh()

    async def run_now(self, name: str) -> None:
        schedule = await self.store.get(name)
        if schedule is None:
            return
        try:
            fired = await trigger(self.store, self.universes, self.commands, schedule, utc_now())
        except (UnknownUniverseError, IdempotencyConflictError) as error:
            ui.notify(f"{name} cannot run: {error}", type="negative")
            return
        ui.notify(
            f"run {fired.run_id} of {schedule.universe}: {fired.submitted.created} jobs submitted",
            type="positive",
        )
        await self.refresh()

    async def delete(self, name: str) -> None:
        await self.store.delete(name)
        ui.notify(f"schedule {name} deleted (the runs it made stay)", type="warning")
        await self.refresh()


def _when(moment: datetime | None) -> str:
    return "none yet" if moment is None else f"{moment:%Y-%m-%d %H:%M} UTC"
