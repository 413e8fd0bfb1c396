"""The universe form without the widgets: what the user typed, checked into a `Universe`.

The check ends with the very model the API's `PUT /universes/{name}` validates with
(backfill_bus.universes.Universe), so the form refuses what the API refuses. A few checks run
before it only to word the reasons for a person and pin them to the field at fault (the model
names neither the bad symbol nor which date is wrong).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from pydantic import ValidationError

from backfill_bus.universes import NAME_PATTERN, Universe
from backfill_contracts import SYMBOL_PATTERN, UnknownSourceError, parse_options
from backfill_ui.forms import Problem, split_symbols

FIELDS = ("name", "source", "symbols", "bar_sizes", "start", "end", "description")
_NAME = re.compile(NAME_PATTERN)


@dataclass
class UniverseDraft:
    name: str
    source: str
    symbols: str  # as typed: separated by commas, semicolons, spaces or new lines
    bar_sizes: list[str]
    start: str  # YYYY-MM-DD, as the date inputs hold it
    end: str  # empty: an open universe, each run collecting up to when it is submitted
    description: str = ""
    # Not on the form: kept from the universe being edited, so saving it loses neither.
    options: dict[str, Any] = field(default_factory=dict)
    time_limit_s: float | None = None


@dataclass(frozen=True, slots=True)
class CheckedUniverse:
    universe: Universe | None
    problems: list[Problem]


def draft_of(universe: Universe) -> UniverseDraft:
    """The form's fields for editing a stored universe."""
    return UniverseDraft(
        name=universe.name,
        source=universe.source,
        symbols=" ".join(universe.symbols),
        bar_sizes=[size.value for size in universe.bar_sizes],
        start=universe.start.date().isoformat(),
        end=universe.end.date().isoformat() if universe.end else "",
        description=universe.description or "",
        options=dict(universe.options),
        time_limit_s=universe.time_limit_s,
    )


def check_universe(draft: UniverseDraft) -> CheckedUniverse:
    """The universe the draft defines, or every reason it would be refused."""
    problems = _worded_problems(draft)
    symbols = split_symbols(draft.symbols)
    try:
        universe = Universe.model_validate(
            {
                "name": draft.name.strip(),
                "source": draft.source.strip(),
                "symbols": symbols,
                "bar_sizes": draft.bar_sizes,
                "start": draft.start.strip(),
                "end": draft.end.strip() or None,
                "options": draft.options,
                "time_limit_s": draft.time_limit_s,
                "description": draft.description.strip() or None,
            }
        )
    except ValidationError as error:
        return CheckedUniverse(None, problems + _model_problems(error, problems))
    if problems:  # the worded checks are never stricter than the model; if one were, it wins
        return CheckedUniverse(None, problems)
    return CheckedUniverse(universe, [])


def _worded_problems(draft: UniverseDraft) -> list[Problem]:
    problems = []
    if not _NAME.fullmatch(draft.name.strip()):
        problems.append(Problem("name", "1 to 64 letters, digits, _ . or - (no spaces)"))
    symbols = split_symbols(draft.symbols)
    bad = [s for s in symbols if not SYMBOL_PATTERN.fullmatch(s)]
    if not symbols:
        problems.append(Problem("symbols", "enter at least one symbol"))
    elif bad:
        listed = ", ".join(repr(s) for s in bad[:5])
        problems.append(Problem("symbols", f"{listed}: 1 to 32 of A-Z a-z 0-9 . ^ = _ -"))
    try:  # checked here too: the model checks the source only once every field is valid
        parse_options(draft.source.strip(), draft.options)
    except UnknownSourceError as error:
        problems.append(Problem("source", str(error)))
    except ValidationError as error:
        problems.extend(Problem("options", _plain(e["msg"])) for e in error.errors())
    if not draft.bar_sizes:
        problems.append(Problem("bar_sizes", "pick at least one bar size"))
    start = _date(draft.start, "start", problems)
    end = _date(draft.end, "end", problems) if draft.end.strip() else None
    if start is not None and end is not None and end <= start:
        problems.append(Problem("end", "must be after the start (the end is exclusive)"))
    return problems


def _date(text: str, name: str, problems: list[Problem]) -> date | None:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        problems.append(Problem(name, "a date such as 2024-01-31"))
        return None


def _model_problems(error: ValidationError, worded: list[Problem]) -> list[Problem]:
    """The model's reasons for the fields the worded checks did not already speak for."""
    spoken = {p.field for p in worded}
    found: list[Problem] = []
    for item in error.errors(include_url=False):
        loc = item["loc"]
        # A series' request names its `symbol`; the form's field is `symbols`.
        name = {"symbol": "symbols"}.get(str(loc[0]), str(loc[0])) if loc else None
        if name in spoken or (name is None and worded):
            continue  # said already, or (the whole universe) most likely a consequence
        problem = Problem(
            name if name in FIELDS or name == "options" else None, _plain(item["msg"])
        )
        if problem not in found:
            found.append(problem)
    return found


def _plain(message: str) -> str:
    return message.removeprefix("Value error, ")
