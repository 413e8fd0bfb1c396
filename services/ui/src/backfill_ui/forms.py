"""The collect form without the widgets: option fields from the models, checking, estimates.

Checked with the very models the API validates with (`BarRequest`, `parse_options`), so the
form refuses exactly what the API would refuse, with pydantic's reasons in plain words.
"""

from __future__ import annotations

import re
import types
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import Enum
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import ValidationError

from backfill_contracts import (
    OPTIONS_BY_SOURCE,
    BarRequest,
    BarSize,
    SourceOptions,
    UnknownSourceError,
    parse_options,
)
from backfill_contracts.estimates import PlanEstimate, estimate_plan
from backfill_contracts.limits import YAHOO_LIMITS

FieldKind = Literal["bool", "choice", "int", "float", "text"]
FORM_FIELDS = ("source", "symbols", "bar_size", "start", "end", "time_limit_s", "mode", "force")
MAX_SYMBOLS = 200  # one job each: a paste of a whole index is fine, a runaway paste is not
# The earliest start "max" offers where the source has no stated limit: IB tells a contract's
# earliest bar only at run time, and the planner starts there when it is later.
EARLIEST_START = date(2000, 1, 1)
PRESETS: dict[str, timedelta | None] = {
    "1 month": timedelta(days=30),
    "1 year": timedelta(days=365),
    "5 years": timedelta(days=5 * 365 + 1),
    "max": None,
}
_LABELS = {
    "sec_type": "Security type",
    "primary_exchange": "Primary exchange",
    "what_to_show": "What to show",
    "use_rth": "Regular trading hours only",
    "latency_ms": "Latency per chunk (ms)",
    "fail_every": "Fail every Nth chunk (0: never)",
}


@dataclass(frozen=True, slots=True)
class OptionField:
    name: str
    kind: FieldKind
    label: str
    help: str
    default: Any
    optional: bool = False
    choices: tuple[str, ...] = ()


def option_fields(source: str) -> list[OptionField]:
    """One form field per option of the source's model, in the model's order."""
    model: type[SourceOptions] = OPTIONS_BY_SOURCE[source]
    fields = []
    for name, info in model.model_fields.items():
        annotation, optional = _unwrap_optional(info.annotation)
        default = info.default
        label = _LABELS.get(name, name.replace("_", " ").capitalize())
        help_text = info.description or ""
        if isinstance(annotation, type) and issubclass(annotation, Enum):
            choices = tuple(str(member.value) for member in annotation)
            value = default.value if isinstance(default, Enum) else default
            fields.append(OptionField(name, "choice", label, help_text, value, optional, choices))
        elif annotation is bool:
            fields.append(OptionField(name, "bool", label, help_text, default, optional))
        elif annotation is int:
            fields.append(OptionField(name, "int", label, help_text, default, optional))
        elif annotation is float:
            fields.append(OptionField(name, "float", label, help_text, default, optional))
        else:
            fields.append(OptionField(name, "text", label, help_text, default, optional))
    return fields


def _unwrap_optional(annotation: Any) -> tuple[Any, bool]:
    if get_origin(annotation) in (Union, types.UnionType):
        args = [arg for arg in get_args(annotation) if arg is not type(None)]
        if len(args) == 1:
            return args[0], True
    return annotation, False


def options_from(fields: list[OptionField], values: dict[str, Any]) -> dict[str, Any]:
    """What the form holds, as the options dict: blanks left out so the model's defaults apply."""
    options: dict[str, Any] = {}
    for spec in fields:
        value = values.get(spec.name)
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        if spec.kind == "int" and isinstance(value, float) and value.is_integer():
            value = int(value)  # ui.number holds floats
        options[spec.name] = value.strip() if isinstance(value, str) else value
    return options


def split_symbols(text: str) -> list[str]:
    """Symbols separated by commas, semicolons or spaces; each once, in the order typed."""
    seen: dict[str, None] = {}
    for part in re.split(r"[\s,;]+", text or ""):
        if part:
            seen.setdefault(part, None)
    return list(seen)


@dataclass(frozen=True, slots=True)
class Problem:
    field: str | None  # a form field (FORM_FIELDS, or "options.<name>"), None for the whole form
    message: str


@dataclass
class Draft:
    source: str
    symbols: str
    bar_size: str
    start: str  # YYYY-MM-DD, as the date inputs hold it
    end: str
    options: dict[str, Any] = field(default_factory=dict)
    time_limit_s: float | None = None
    mode: str = "full"  # full, fill_gaps, top_up (see backfill_contracts.JobMode)
    force: bool = False


@dataclass
class Checked:
    requests: list[BarRequest]
    problems: list[Problem]
    warnings: list[str]
    estimate: PlanEstimate | None

    @property
    def ok(self) -> bool:
        return bool(self.requests) and not self.problems


def check(draft: Draft, today: date | None = None) -> Checked:
    """Every job the draft asks for, or the reasons it would be refused."""
    problems: list[Problem] = []
    symbols = split_symbols(draft.symbols)
    if not symbols:
        problems.append(Problem("symbols", "enter at least one symbol"))
    elif len(symbols) > MAX_SYMBOLS:
        problems.append(Problem("symbols", f"at most {MAX_SYMBOLS} symbols at once"))
    options = _checked_options(draft, problems)
    base: dict[str, Any] = {
        "source": draft.source,
        "bar_size": draft.bar_size,
        "start": _date(draft.start, "start", problems),
        "end": _date(draft.end, "end", problems),
        "options": options if options is not None else {},
        "time_limit_s": draft.time_limit_s,
        "mode": draft.mode,
        "force": draft.force,
    }
    requests: list[BarRequest] = []
    for symbol in symbols[:MAX_SYMBOLS] if symbols else []:
        try:
            requests.append(BarRequest(symbol=symbol, **base))
        except ValidationError as error:
            for problem in _problems(error, symbol):
                if problem not in problems:
                    problems.append(problem)
    if problems:
        return Checked([], problems, [], None)
    first = requests[0]
    estimate = estimate_plan(first.source, first.bar_size, first.start, first.end, first.options)
    return Checked(requests, [], _warnings(first, today or datetime.now(UTC).date()), estimate)


def _checked_options(draft: Draft, problems: list[Problem]) -> dict[str, Any] | None:
    try:
        return parse_options(draft.source, draft.options).model_dump(mode="json")
    except UnknownSourceError as error:
        problems.append(Problem("source", str(error)))
    except ValidationError as error:
        for item in error.errors(include_url=False):
            name = ".".join(str(part) for part in item["loc"])
            where = f"options.{name}" if name else "options"
            problems.append(Problem(where, _plain(item["msg"])))
    return None


def _date(text: str, name: str, problems: list[Problem]) -> str | None:
    """The date as BarRequest reads it (a plain date is midnight UTC), if it is one."""
    value = (text or "").strip()
    try:
        date.fromisoformat(value)
    except ValueError:
        problems.append(Problem(name, "a date such as 2024-01-31"))
        return None
    return value


def _problems(error: ValidationError, symbol: str) -> list[Problem]:
    found = []
    for item in error.errors(include_url=False):
        loc = item["loc"]
        name = str(loc[0]) if loc else None
        if name in ("start", "end") and item["type"] in ("datetime_type", "none_required"):
            continue  # already reported as a date the form could not read
        message = _plain(item["msg"])
        if name == "symbol":
            found.append(Problem("symbols", f"{symbol!r}: {message}"))
        elif name == "options":
            found.append(Problem("options", message))
        else:
            found.append(Problem(name, message))
    return found


def _plain(message: str) -> str:
    """pydantic's message without its "Value error, " prefix."""
    return message.removeprefix("Value error, ")


def _warnings(request: BarRequest, today: date) -> list[str]:
    """What the API accepts but the source will refuse at once: better known before."""
    if request.source != "yahoo":
        return []
    limit = YAHOO_LIMITS.get(request.bar_size)
    if limit is None:
        return [f"Yahoo has no {request.bar_size.value} bars: the job will fail at once"]
    if limit.lookback is not None and request.start.date() < today - limit.lookback:
        return [
            f"Yahoo serves {request.bar_size.value} bars for the last {limit.lookback.days} days"
            " only: the job will fail at once, saying what range is possible"
        ]
    return []


def preset_range(name: str, source: str, bar_size: str, today: date) -> tuple[date, date]:
    """A preset's start and end (exclusive, so today is included)."""
    end = today + timedelta(days=1)
    span = PRESETS[name]
    if span is not None:
        return today - span, end
    limit = YAHOO_LIMITS.get(BarSize(bar_size)) if source == "yahoo" else None
    if limit is not None and limit.lookback is not None:
        return today - limit.lookback, end
    return EARLIEST_START, end
