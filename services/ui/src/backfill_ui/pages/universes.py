"""Universes (`/universes`): define, edit and delete universes; run, watch and cancel their runs.

Universes are shared configuration: the API wants an `admin` token to define one; here the
console's login is enough, as it is for the console's webhook and the IB endpoint. The form
saves through the API's own model and store (components.universe_editor), so the API and
`backfill universe create` make the same universes. A run's totals come from the same
read-model query the API's run view uses, refreshed every second while the page is open.
"""

from __future__ import annotations

from nicegui import ui
from redis.exceptions import RedisError

from backfill_bus import IdempotencyConflictError
from backfill_bus.universes import (
    Universe,
    UniverseRun,
    UniverseStore,
    cancel_run,
    new_run_id,
    submit_run,
)
from backfill_readmodel import queries
from backfill_ui.actions import REDIS_DOWN
from backfill_ui.components.universe_editor import UniverseEditor
from backfill_ui.feed import tolerant
from backfill_ui.frame import Console, frame

REFRESH_EVERY_S = 1.0
RUNS_SHOWN = 3
RUN_CUT_SHORT = "Redis is unavailable: the run may be partly submitted; try again in a moment"


def register(console: Console) -> None:
    @ui.page("/universes")
    async def universes_page() -> None:
        with frame(console, "Universes"):
            page = UniversesPage(console)
            await page.refresh()


class UniversesPage:
    def __init__(self, console: Console) -> None:
        self.console = console
        services = console.services
        self.store = UniverseStore(services.redis, services.names)
        self.editor = UniverseEditor(self.store, on_saved=self.refresh)
        self.deleting: str | None = None
        # Built once, outside the box the refresh rebuilds, so a tick cannot close it.
        with ui.dialog() as self.confirm, ui.card().mark("delete-dialog"):
            self.confirm_text = ui.label()
            with ui.row().classes("gap-2"):
                ui.button("Delete", icon="delete", on_click=self.delete_confirmed).props(
                    "color=negative"
                ).mark("delete-confirm")
                ui.button("Keep it", on_click=self.confirm.close).props("flat").mark("delete-keep")
        self.box = ui.column().classes("w-full gap-4").mark("universes")
        self.shown: object = None  # what the box shows: rebuilt only when it changes
        ui.timer(REFRESH_EVERY_S, tolerant(self.refresh))

    async def refresh(self) -> None:
        universes = await self.store.all()
        runs = {u.name: (await self.store.runs(u.name))[:RUNS_SHOWN] for u in universes}
        lines: dict[tuple[str, str], tuple[str, bool]] = {}
        async with self.console.services.connect() as conn:
            for name, found in runs.items():
                for run in found:
                    views = await queries.universe_run_jobs(conn, name, run.run_id)
                    totals = queries.run_totals([j.job_id for j in run.jobs], views)
                    counts = ", ".join(f"{n} {s}" for s, n in sorted(totals.by_status.items()))
                    text = (
                        f"run {run.run_id}: {totals.percent:.0f}%  ·  {totals.jobs_total} jobs"
                        f" ({counts})  ·  {totals.bars_stored:,} bars"
                    )
                    lines[(name, run.run_id)] = (text, totals.finished)
        shown = ([u.model_dump() for u in universes], lines)
        if shown == self.shown:  # unchanged: a rebuild would only steal a click in progress
            return
        self.shown = shown
        self.box.clear()
        with self.box:
            if not universes:
                ui.label(
                    "No universe yet: define one above, with `backfill universe create` or "
                    "PUT /api/v1/universes/{name}."
                ).mark("no-universes")
            for universe in universes:
                self._card(universe, runs[universe.name], lines)

    def _card(
        self,
        universe: Universe,
        runs: list[UniverseRun],
        lines: dict[tuple[str, str], tuple[str, bool]],
    ) -> None:
        name = universe.name
        with ui.card().classes("w-full").mark(f"universe-{name}"):
            with ui.row().classes("w-full items-center gap-4"):
                ui.label(name).classes("text-h6")
                sizes = ", ".join(universe.bar_sizes)
                ui.label(
                    f"{universe.source} · {len(universe.symbols)} symbols x {sizes} · "
                    f"{universe.start:%Y-%m-%d} to "
                    + (f"{universe.end:%Y-%m-%d}" if universe.end else "now (open)")
                )
                ui.space()
                ui.button("Run now", icon="play_arrow", on_click=lambda: self.run(name)).mark(
                    f"run-{name}"
                )
                ui.button("Edit", icon="edit", on_click=lambda: self.edit(name)).props("flat").mark(
                    f"edit-{name}"
                )
                ui.button("Delete", icon="delete", on_click=lambda: self.ask_delete(name)).props(
                    "flat color=negative"
                ).mark(f"delete-{name}")
            if universe.description:
                ui.label(universe.description).mark(f"description-{name}")
            ui.label(" ".join(universe.symbols)).classes("text-caption text-grey-7")
            for run in runs:
                text, finished = lines[(name, run.run_id)]
                with ui.row().classes("items-center gap-2"):
                    ui.label(text).mark(f"run-{name}-{run.run_id}")
                    if not finished:
                        ui.button("Cancel", on_click=lambda r=run: self.cancel(r)).props(
                            "flat dense color=negative"
                        ).mark(f"cancel-{name}-{run.run_id}")

    async def run(self, name: str) -> None:
        services = self.console.services
        try:
            # Read again, as the API does: the run is of the universe as it is now.
            universe = await self._current(name)
            if universe is None:
                return
            submitted = await submit_run(self.store, services.commands, universe, new_run_id())
        except IdempotencyConflictError:  # a fresh run id cannot conflict; said, not raised
            ui.notify("that run was submitted with other settings", type="negative")
            return
        except (RedisError, OSError):  # the jobs already on the log stay in the run's record
            ui.notify(RUN_CUT_SHORT, type="negative")
            return
        ui.notify(
            f"run {submitted.run.run_id} of {universe.name}: {submitted.created} jobs submitted",
            type="positive",
        )
        await self.refresh()

    async def edit(self, name: str) -> None:
        try:
            universe = await self._current(name)
        except (RedisError, OSError):
            ui.notify(REDIS_DOWN, type="negative")
            return
        if universe is not None:
            self.editor.edit(universe)

    async def _current(self, name: str) -> Universe | None:
        """The universe as stored now, not the card's copy (the API may have changed it since
        the last tick); None, said, when it is gone."""
        universe = await self.store.get(name)
        if universe is None:
            ui.notify(f"universe {name} is gone", type="info")
            await self.refresh()
        return universe

    def ask_delete(self, name: str) -> None:
        self.deleting = name
        self.confirm_text.set_text(
            f"Delete universe {name} and the record of its runs? Their jobs and bars stay."
        )
        self.confirm.open()

    async def delete_confirmed(self) -> None:
        self.confirm.close()
        name, self.deleting = self.deleting, None
        if name is None:
            return
        try:
            deleted = await self.store.delete(name)
        except (RedisError, OSError):
            ui.notify(f"{REDIS_DOWN} (nothing was deleted)", type="negative")
            return
        if deleted:
            ui.notify(f"universe {name} deleted", type="warning")
        else:  # another browser or the API was first
            ui.notify(f"universe {name} was already gone", type="info")
        await self.refresh()

    async def cancel(self, run: UniverseRun) -> None:
        async with self.console.services.connect() as conn:
            views = await queries.universe_run_jobs(conn, run.universe, run.run_id)
        result = await cancel_run(
            self.console.services.commands, run, {v.job_id: v.status for v in views}
        )
        ui.notify(
            f"run {run.run_id}: {result.cancelled} cancelled, {result.cancelling} stopping",
            type="warning",
        )
        await self.refresh()
