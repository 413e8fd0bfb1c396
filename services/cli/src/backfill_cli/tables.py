"""Plain-text tables and the number and time formats the listings share."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> str:
    """Columns padded to their widest cell; the columns in `right` (numbers) align right."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]

    def render(cells: Sequence[str]) -> str:
        padded = [
            c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(cells)
        ]
        return "  ".join(padded).rstrip()

    return "\n".join([render(headers), *(render(r) for r in rows)])


def local_time(iso: str | None) -> str:
    """An API timestamp (ISO 8601, UTC) in the reader's local time, to the second."""
    if not iso:
        return "-"
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    if moment.tzinfo is not None:
        moment = moment.astimezone()
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 90:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 90:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def percent(rate: float | None) -> str:
    """A 0..1 rate as a percentage, or `-` when there is nothing to rate yet."""
    return "-" if rate is None else f"{rate * 100:.1f}%"
