"""Log lines of many processes interleaved on one terminal, each prefixed with time and name."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable
from typing import TextIO

# Distinct, readable on dark and light backgrounds; bright red is kept for our own errors.
_COLOURS = ("36", "33", "32", "35", "34", "96", "93", "92", "95", "94")
_OWN = "1"  # bold: the supervisor's own lines stand out from the services'
_RESET = "\x1b[0m"


def use_colour(stream: TextIO) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set (https://no-color.org)."""
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and "NO_COLOR" not in os.environ


class LinePrinter:
    """Writes `HH:MM:SS name       | text` lines; the name column is as wide as the longest name."""

    def __init__(
        self,
        names: Iterable[str],
        own_name: str = "backfill",
        stream: TextIO | None = None,
        colour: bool | None = None,
    ) -> None:
        self._stream = stream if stream is not None else sys.stdout
        self._own = own_name
        ordered = list(dict.fromkeys([*names, own_name]))
        self._width = max(len(n) for n in ordered)
        self._colour = use_colour(self._stream) if colour is None else colour
        self._codes = {n: _COLOURS[i % len(_COLOURS)] for i, n in enumerate(ordered)}
        self._codes[own_name] = _OWN

    def line(self, name: str, text: str) -> None:
        label = name.ljust(self._width)
        if self._colour:
            label = f"\x1b[{self._codes.get(name, '0')}m{label}{_RESET}"
        # One write per line, so lines from different children never interleave mid-line.
        self._stream.write(f"{time.strftime('%H:%M:%S')} {label} | {text}\n")
        self._stream.flush()

    def say(self, text: str) -> None:
        """A line from the supervisor itself."""
        self.line(self._own, text)
