"""Collect (`/`): what to collect, checked as it is typed, its plan, then one job per symbol."""

from __future__ import annotations

from collections.abc import MutableMapping
from datetime import UTC, datetime
from typing import Any

from nicegui import ui
from nicegui.elements.mixins.validation_element import ValidationElement

from backfill_contracts import BarSize, known_sources
from backfill_ui import actions, forms, words
from backfill_ui.components.job_card import job_path
from backfill_ui.frame import Console, frame

DEFAULT_SOURCE = "sim"


def register(console: Console) -> None:
    @ui.page("/")
    def collect_page() -> None:
        with frame(console, "Collect") as session:
            CollectForm(console, session)


class CollectForm:
    def __init__(self, console: Console, session: MutableMapping[str, Any]) -> None:
        self.console = console
        self.session = session
        self.option_values: dict[str, Any] = {}
        self.option_inputs: dict[str, ui.element] = {}
        self.checked: forms.Checked | None = None
        today = datetime.now(UTC).date()
        start, end = forms.preset_range("1 month", DEFAULT_SOURCE, "1d", today)
        with ui.card().classes("w-full max-w-3xl"):
            with ui.row().classes("w-full items-start gap-4"):
                self.source = ui.select(
                    known_sources(), value=DEFAULT_SOURCE, label="Source",
                    on_change=self._source_changed,
                ).classes("w-32").mark("source")  # fmt: skip
                self.symbols = (
                    ui.input("Symbols", placeholder="AAPL, MSFT BRK-B", on_change=self.recheck)
                    .props("clearable")
                    .classes("col")
                    .mark("symbols")
                )
                self.bar_size = ui.select(
                    [size.value for size in BarSize], value="1d", label="Bar size",
                    on_change=self.recheck,
                ).classes("w-28").mark("bar_size")  # fmt: skip
            with ui.row().classes("w-full items-center gap-4"):
                self.start = ui.date_input(
                    "Start", value=start.isoformat(), on_change=self.recheck
                ).mark("start")
                self.end = ui.date_input(
                    "End (exclusive)", value=end.isoformat(), on_change=self.recheck
                ).mark("end")
                for name in forms.PRESETS:
                    ui.button(name, on_click=lambda n=name: self._preset(n)).props(
                        "flat dense no-caps"
                    ).mark(f"preset-{name.replace(' ', '-')}")
            with ui.row().classes("w-full items-center gap-4"):
                self.time_limit = (
                    ui.number("Time limit (s, empty: the worker's)", min=1, on_change=self.recheck)
                    .classes("w-64")
                    .mark("time_limit_s")
                )
                self.mode = (
                    ui.select(MODES, value="full", label="Mode", on_change=self.recheck)
                    .classes("w-56")
                    .mark("mode")
                )
                self.force = ui.checkbox("Fetch again what is stored", on_change=self.recheck).mark(
                    "force"
                )
            ui.label("Options").classes("text-subtitle2 q-mt-sm")
            self.options_box = ui.row().classes("w-full items-start gap-4")
            self.problems = ui.column().classes("gap-0").mark("problems")
            self.plan = ui.label().classes("text-body2").mark("plan")
            self.warnings = ui.column().classes("gap-0").mark("warnings")
            self.submit_button = ui.button("Submit", icon="send", on_click=self.submit).mark(
                "submit"
            )
        self.submitted = ui.column().classes("w-full max-w-3xl gap-1").mark("submitted")
        self._build_options()
        self.recheck()

    # -- the options of the chosen source, generated from its model -------------------------

    def _source_changed(self) -> None:
        self.option_values = {}
        self._build_options()
        self.recheck()

    def _build_options(self) -> None:
        self.options_box.clear()
        self.option_inputs = {}
        fields = forms.option_fields(self.source.value)
        with self.options_box:
            if not fields:
                ui.label(f"{self.source.value} has no options").classes("text-grey-7")
            for spec in fields:
                self.option_values[spec.name] = spec.default
                self.option_inputs[spec.name] = self._option_input(spec)

    def _option_input(self, spec: forms.OptionField) -> ui.element:
        def changed(event: Any, name: str = spec.name) -> None:
            self.option_values[name] = event.value
            self.recheck()

        element: ui.element
        if spec.kind == "bool":
            element = ui.switch(spec.label, value=bool(spec.default), on_change=changed)
        elif spec.kind == "choice":
            element = ui.select(
                list(spec.choices), value=spec.default, label=spec.label, on_change=changed
            ).classes("w-40")
        elif spec.kind in ("int", "float"):
            element = ui.number(
                spec.label, value=spec.default, on_change=changed,
                format="%d" if spec.kind == "int" else None,
            ).classes("w-52")  # fmt: skip
        else:
            element = ui.input(
                spec.label, value=spec.default or "", on_change=changed,
                placeholder="" if not spec.optional else "optional",
            ).classes("w-40")  # fmt: skip
        if spec.help:
            element.tooltip(spec.help)
        return element.mark(f"option-{spec.name}")

    # -- checking as the user types -------------------------------------------------------

    def draft(self) -> forms.Draft:
        fields = forms.option_fields(self.source.value)
        limit = self.time_limit.value
        return forms.Draft(
            source=self.source.value,
            symbols=self.symbols.value or "",
            bar_size=self.bar_size.value,
            start=self.start.value or "",
            end=self.end.value or "",
            options=forms.options_from(fields, self.option_values),
            time_limit_s=float(limit) if limit else None,
            mode=self.mode.value,
            force=bool(self.force.value),
        )

    def recheck(self) -> None:
        self.checked = checked = forms.check(self.draft())
        by_field: dict[str, list[str]] = {}
        for problem in checked.problems:
            by_field.setdefault(problem.field or "", []).append(problem.message)
        for name, element in self._inputs().items():
            if isinstance(element, ValidationElement):
                element.error = "; ".join(by_field.get(name, [])) or None
        self.problems.clear()
        with self.problems:
            for problem in checked.problems:
                where = _field_words(problem.field)
                ui.label(f"{where}{problem.message}").classes("text-negative")
        self.warnings.clear()
        with self.warnings:
            for warning in checked.warnings:
                ui.label(warning).classes("text-warning")
        self.plan.set_text(_plan_words(checked))
        self.submit_button.set_enabled(checked.ok)

    def _inputs(self) -> dict[str, ui.element]:
        fixed = {
            "symbols": self.symbols,
            "bar_size": self.bar_size,
            "start": self.start,
            "end": self.end,
            "time_limit_s": self.time_limit,
            "mode": self.mode,
            "source": self.source,
        }
        return fixed | {f"options.{name}": el for name, el in self.option_inputs.items()}

    def _preset(self, name: str) -> None:
        start, end = forms.preset_range(
            name, self.source.value, self.bar_size.value, datetime.now(UTC).date()
        )
        self.start.set_value(start.isoformat())
        self.end.set_value(end.isoformat())

    # -- submitting -------------------------------------------------------------------

    async def submit(self) -> None:
        self.recheck()
        checked = self.checked
        if checked is None or not checked.ok:
            return
        self.submit_button.disable()  # one click, one set of jobs
        try:
            done, problem = await actions.submit(self.console.services, checked.requests)
        finally:
            self.submit_button.enable()
        actions.watch(self.session, [item.job_id for item in done])
        with self.submitted:
            if done:
                ui.label(f"Submitted {len(done)} job(s); they run on without this page:").classes(
                    "text-positive"
                )
                for item in done:
                    ui.link(f"{item.symbol}: job {item.job_id}", job_path(item.job_id)).mark(
                        f"submitted-{item.job_id}"
                    )
            if problem:
                ui.label(problem).classes("text-negative")
        if done:
            ui.notify(f"Submitted {len(done)} job(s)", type="positive")


# What each job mode collects, as the select shows it.
MODES = {
    "full": "Full range (skips what is stored)",
    "fill_gaps": "Fill gaps in the range",
    "top_up": "Top up after the last bar",
}


def _field_words(field: str | None) -> str:
    if field is None:
        return ""
    if field.startswith("options."):
        return f"Option {field.removeprefix('options.')}: "
    if field == "options":
        return "Options: "
    return f"{field.replace('_', ' ').capitalize()}: "


def _plan_words(checked: forms.Checked) -> str:
    estimate = checked.estimate
    if estimate is None:
        return ""
    jobs = len(checked.requests)
    total = estimate.requests * jobs
    time_text = (
        "no pacing wait"
        if estimate.seconds <= 0
        else f"at least {words.duration(estimate.seconds * jobs)} of pacing"
    )
    words_ = (
        f"Plan: {jobs} job(s) x up to {estimate.requests} request(s) = {total} request(s), "
        f"{time_text} ({estimate.note})"
    )
    first = checked.requests[0]
    if first.mode != "full" or not first.force:
        words_ += "; what is stored already is not fetched again"
    return words_
