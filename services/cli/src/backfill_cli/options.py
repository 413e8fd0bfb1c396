"""`--option key=value`: source options typed the way a person means them on a command line."""

from __future__ import annotations

import argparse
import math
from collections.abc import Iterable

OptionValue = bool | int | float | str


def parse_value(raw: str) -> OptionValue:
    """`true`/`false` are booleans, then ints, then finite floats; anything else stays a string."""
    lowered = raw.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        return int(raw)
    except ValueError:
        pass
    try:
        number = float(raw)
    except ValueError:
        return raw
    # "nan" and "inf" parse as floats but are not valid JSON, and nobody means them as numbers.
    return number if math.isfinite(number) else raw


def parse_option(text: str) -> tuple[str, OptionValue]:
    """argparse `type=` for one `key=value`."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    return key, parse_value(value)


def options_dict(pairs: Iterable[tuple[str, OptionValue]]) -> dict[str, OptionValue]:
    """The options as a dict; a key given twice is an error, since one value would be lost."""
    options: dict[str, OptionValue] = {}
    for key, value in pairs:
        if key in options:
            raise ValueError(f"option {key!r} is given more than once")
        options[key] = value
    return options
