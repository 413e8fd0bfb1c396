"""Job modes: how much of its range a job collects, given what is stored already."""

from __future__ import annotations

from enum import StrEnum


class JobMode(StrEnum):
    """What part of the range a job collects (the worker reads what is stored to decide).

    `full`: every chunk of the range, except chunks already collected for the same series
    (unless `force`). `fill_gaps`: only the bars missing in the range, against the series'
    trading calendar (gaps the source answered with nothing are not asked again unless
    `force`). `top_up`: what is missing after the series' last stored bar, up to `end`.
    """

    FULL = "full"
    FILL_GAPS = "fill_gaps"
    TOP_UP = "top_up"
