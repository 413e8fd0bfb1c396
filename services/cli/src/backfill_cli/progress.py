"""Job progress as plain text: bars redrawn in place on a terminal, sparse lines in a log."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Sequence
from typing import TextIO

from backfill_cli.models import Job

BAR_WIDTH = 24
# How often a non-terminal stream (a CI log, a file) gets a line for a job still moving.
LOG_INTERVAL_S = 5.0


def progress_line(job: Job, symbol_width: int = 0) -> str:
    """`AAPL  [#######.....]  45%  12/27 chunks  10,530 bars  running`"""
    p = job.progress
    filled = round(p.fraction * BAR_WIDTH)
    bar = "#" * filled + "." * (BAR_WIDTH - filled)
    return (
        f"{job.symbol:<{symbol_width}}  [{bar}] {round(p.fraction * 100):>3}%  "
        f"{chunks(job)}  {p.bars_stored:,} bars  {job.status}"
    )


def final_line(job: Job, symbol_width: int = 0) -> str:
    """`AAPL  succeeded  27/27 chunks  10,530 bars  job 5f0c...`, plus the reason if it failed."""
    line = (
        f"{job.symbol:<{symbol_width}}  {job.status:<9}  {chunks(job)}  "
        f"{job.progress.bars_stored:,} bars  job {job.job_id}"
    )
    return f"{line}  {job.error}" if job.error else line


def chunks(job: Job) -> str:
    total = job.progress.chunks_total
    # Before a worker has planned the job, the API may say 0 chunks: unknown, not none.
    known = total is not None and (total > 0 or job.finished)
    return f"{job.progress.chunks_done}/{total if known else '?'} chunks"


class ProgressBoard:
    """Shows one line per job on `stream`.

    On a terminal the lines are redrawn in place. Elsewhere (a CI log, a file) a job gets a
    line when first seen and when it finishes, and in between at most every `interval` seconds,
    so a log is not flooded with a line every poll (or every running/retrying flip).
    """

    def __init__(
        self,
        stream: TextIO,
        interactive: bool | None = None,
        interval: float = LOG_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stream = stream
        self._interactive = stream.isatty() if interactive is None else interactive
        self._interval = interval
        self._clock = clock
        self._drawn = 0
        self._logged: dict[str, tuple[str, str, float]] = {}  # job id -> status, line, when

    def update(self, jobs: Sequence[Job]) -> None:
        width = max((len(j.symbol) for j in jobs), default=0)
        if self._interactive:
            self._redraw([progress_line(j, width) for j in jobs])
        else:
            self._log(jobs, width)

    def close(self) -> None:
        """Erase the in-place board, so the final lines that follow stand alone."""
        if self._interactive and self._drawn:
            self._stream.write(f"\x1b[{self._drawn}F\x1b[J")
            self._stream.flush()
            self._drawn = 0

    def _redraw(self, lines: list[str]) -> None:
        # A line wider than the terminal wraps onto two rows and the cursor arithmetic that
        # moves back up to redraw would then be off by one: cut lines to fit.
        columns = max(shutil.get_terminal_size().columns - 1, 20)
        out = f"\x1b[{self._drawn}F" if self._drawn else ""
        out += "".join(f"\x1b[2K{line[:columns]}\n" for line in lines)
        self._stream.write(out)
        self._stream.flush()
        self._drawn = len(lines)

    def _log(self, jobs: Sequence[Job], width: int) -> None:
        now = self._clock()
        for job in jobs:
            line = progress_line(job, width)
            last = self._logged.get(job.job_id)
            if last is None:
                due = True
            elif job.finished:
                due = last[0] != job.status
            else:
                due = now - last[2] >= self._interval and last[1] != line
            if due:
                self._stream.write(line + "\n")
                self._logged[job.job_id] = (job.status, line, now)
        self._stream.flush()
