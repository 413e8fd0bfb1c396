"""Which expected bars a series lacks, and why: pure functions over slots, bars and chunks.

A gap is a run of consecutive missing slots (consecutive in the calendar, so a week of missing
minute bars is one gap, nights and weekends included) with one reason:

- `never_requested`: no job ever asked the source for that time.
- `no_data`: a chunk covering it was collected and the source answered with no bars at all.
- `partial`: a chunk covering it was collected with bars, but none for this time (a source that
  answered with part of the window: a halt, a short history, a late start).
- `failed`: a finished job asked for it and did not collect it (the chunk failed, or the job
  failed or was cancelled first). Chunks of jobs still under way are not counted yet.

When several chunks cover a time, what was collected wins over what failed. A collected chunk
covers its window only up to its job's start: bars that did not exist yet when it was fetched
are not claimed as answered.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from backfill_readmodel.coverage.slots import Slots


class GapKind(StrEnum):
    NEVER_REQUESTED = "never_requested"
    NO_DATA = "no_data"
    PARTIAL = "partial"
    FAILED = "failed"


# What a chunk says about the times it covers, strongest first.
_PRECEDENCE = (GapKind.PARTIAL, GapKind.NO_DATA, GapKind.FAILED)


@dataclass(frozen=True, slots=True)
class ChunkWindow:
    start: int  # epoch seconds, UTC
    end: int
    kind: GapKind  # what a missing bar inside it is: partial, no_data or failed


@dataclass(frozen=True, slots=True)
class Gap:
    start: int
    end: int
    bars: int  # missing slots
    kind: GapKind


def held_slots(slots: Slots, bar_ts: Sequence[int]) -> list[bool]:
    """Which slots hold a bar; `bar_ts` sorted ascending."""
    held = [False] * len(slots)
    for ts in bar_ts:
        index = bisect_right(slots.match_lo, ts) - 1
        if index >= 0 and ts < slots.match_hi[index]:
            held[index] = True
    return held


class _Intervals:
    """Disjoint, sorted intervals: the union of some chunk windows, for point lookups."""

    def __init__(self, windows: Iterable[tuple[int, int]]) -> None:
        merged: list[list[int]] = []
        for start, end in sorted(windows):
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        self.starts = [m[0] for m in merged]
        self.ends = [m[1] for m in merged]

    def __contains__(self, point: int) -> bool:
        index = bisect_right(self.starts, point) - 1
        return index >= 0 and point < self.ends[index]


def classify(slots: Slots, held: Sequence[bool], chunks: Iterable[ChunkWindow]) -> list[Gap]:
    """The gaps among the slots not held, each run split where its reason changes."""
    by_kind: dict[GapKind, list[tuple[int, int]]] = {kind: [] for kind in _PRECEDENCE}
    for chunk in chunks:
        if chunk.start < chunk.end:
            by_kind[chunk.kind].append((chunk.start, chunk.end))
    covers = [(kind, _Intervals(by_kind[kind])) for kind in _PRECEDENCE]
    gaps: list[Gap] = []
    previous = -2
    for index, is_held in enumerate(held):
        if is_held:
            continue
        point = slots.starts[index]
        kind = next((k for k, where in covers if point in where), GapKind.NEVER_REQUESTED)
        if gaps and previous == index - 1 and gaps[-1].kind is kind:
            last = gaps[-1]
            gaps[-1] = Gap(last.start, slots.ends[index], last.bars + 1, kind)
        else:
            gaps.append(Gap(point, slots.ends[index], 1, kind))
        previous = index
    return gaps
