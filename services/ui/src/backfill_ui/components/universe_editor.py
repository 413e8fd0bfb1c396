"""Define or edit a universe: the form, the reasons a save was refused, and the save itself.

Checked by backfill_ui.universe_form (the API's own model) and saved with the API's own store
call (`UniverseStore.put`), so a universe made here is the one `PUT /universes/{name}` would
make. A refused save leaves every field as typed; the reasons show beside their fields.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from nicegui import ui
from nicegui.elements.mixins.validation_element import ValidationElement
from redis.exceptions import RedisError

from backfill_bus.universes import Universe, UniverseStore
from backfill_contracts import BarSize, known_sources
from backfill_ui.actions import REDIS_DOWN
from backfill_ui.universe_form import UniverseDraft, check_universe, draft_of

DEFAULT_SOURCE = "sim"
DEFAULT_SPAN = timedelta(days=365)


class UniverseEditor:
    def __init__(self, store: UniverseStore, on_saved: Callable[[], Awaitable[None]]) -> None:
        self.store = store
        self.on_saved = on_saved
        # The universe being edited, if one is: its options and time limit are not on the form.
        self.editing: UniverseDraft | None = None
        today = datetime.now(UTC).date()
        with ui.card().classes("w-full max-w-3xl").mark("universe-form"):
            self.heading = ui.label().classes("text-subtitle1").mark("universe-form-heading")
            with ui.row().classes("w-full items-start gap-4"):
                self.name = ui.input("Name", placeholder="megacaps").classes("w-48")
                self.source = ui.input(
                    "Source", value=DEFAULT_SOURCE, autocomplete=known_sources()
                ).classes("w-32")
                self.bar_sizes = (
                    ui.select(
                        [s.value for s in BarSize], value=["1d"], label="Bar sizes", multiple=True
                    )
                    .props("use-chips")
                    .classes("col")
                )
            self.symbols = (
                ui.textarea("Symbols", placeholder="AAPL, MSFT NVDA: commas, spaces or lines")
                .props("autogrow")
                .classes("w-full")
            )
            with ui.row().classes("w-full items-start gap-4"):
                self.start = ui.date_input("Start", value=(today - DEFAULT_SPAN).isoformat())
                self.end = ui.date_input(
                    "End (exclusive), empty: open, up to each run", value=today.isoformat()
                )
                self.description = ui.input("Description (optional)").classes("col")
            self.problems = ui.column().classes("gap-0").mark("universe-problems")
            with ui.row().classes("gap-2"):
                ui.button("Save universe", icon="save", on_click=self.save).mark("universe-save")
                ui.button("New", icon="add", on_click=self.new).props("flat").mark("universe-new")
        for name, element in self._fields().items():
            element.mark(f"universe-{name}")
        self._show_heading()

    def _fields(self) -> dict[str, ui.element]:
        return {
            "name": self.name,
            "source": self.source,
            "symbols": self.symbols,
            "bar_sizes": self.bar_sizes,
            "start": self.start,
            "end": self.end,
            "description": self.description,
        }

    def _show_heading(self) -> None:
        if self.editing is None:
            self.heading.set_text("Define a universe")
        else:
            self.heading.set_text(
                f"Edit universe {self.editing.name} (save it under another name to make a new one)"
            )

    def edit(self, universe: Universe) -> None:
        """Fill the form with a stored universe, to change and save it."""
        self.editing = draft = draft_of(universe)
        self.name.set_value(draft.name)
        self.source.set_value(draft.source)
        self.symbols.set_value(draft.symbols)
        self.bar_sizes.set_value(draft.bar_sizes)
        self.start.set_value(draft.start)
        self.end.set_value(draft.end)
        self.description.set_value(draft.description)
        self._show_problems({})
        self._show_heading()

    def new(self) -> None:
        """Back to defining a new universe; the typed fields stay, to start from."""
        self.editing = None
        self._show_heading()

    def draft(self) -> UniverseDraft:
        source = (self.source.value or "").strip()
        kept = self.editing or UniverseDraft("", "", "", [], "", "")
        return UniverseDraft(
            name=self.name.value or "",
            source=source,
            symbols=self.symbols.value or "",
            bar_sizes=list(self.bar_sizes.value or []),
            start=self.start.value or "",
            end=self.end.value or "",
            description=self.description.value or "",
            # Options belong to their source: another source starts from its defaults.
            options=kept.options if source == kept.source else {},
            time_limit_s=kept.time_limit_s,
        )

    async def save(self) -> None:
        checked = check_universe(self.draft())
        if checked.universe is None:
            by_field: dict[str | None, list[str]] = {}
            for problem in checked.problems:
                by_field.setdefault(problem.field, []).append(problem.message)
            self._show_problems(by_field)
            return
        universe = checked.universe
        try:
            created = await self.store.put(universe)
        except (RedisError, OSError):
            self._show_problems({None: [f"{REDIS_DOWN} (the universe is not saved)"]})
            return
        self._show_problems({})
        self.editing = draft_of(universe)
        self._show_heading()
        verb = "defined" if created else "saved"
        ui.notify(f"universe {universe.name} {verb}", type="positive")
        await self.on_saved()

    def _show_problems(self, by_field: dict[str | None, list[str]]) -> None:
        for name, element in self._fields().items():
            error = "; ".join(by_field.get(name, [])) or None
            if isinstance(element, ValidationElement):
                element.error = error
            else:  # the date inputs: a QInput without NiceGUI's validation
                element.props["error"] = error is not None
                element.props["error-message"] = error or ""
        self.problems.clear()
        with self.problems:
            for field, messages in by_field.items():
                where = "" if field is None else f"{field.replace('_', ' ').capitalize()}: "
                for message in messages:
                    ui.label(f"{where}{message}").classes("text-negative")
