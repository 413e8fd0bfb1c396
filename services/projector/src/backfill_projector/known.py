"""The job and chunk rows the projector committed last, kept for its next batches.

Loading the rows a batch touches was two queries per batch, and for a running job it read every
one of its chunks again each time (issue #9: 1.7 of a 15 ms batch in A4's profile). The
projector is the only writer of these tables, so what it committed is what they hold, for as
long as nobody else committed since: each commit writes a fresh mark beside the position, and
the rows are trusted only while the position and the mark read at the next batch's start are
the ones that commit wrote. A rebuild, a second projector or a hand-edited position changes
them, and everything known is forgotten. So is everything after a failed batch (its folding
changed the rows in place), and after a cleanup (it deletes rows).

Only jobs still going are kept, within bounds: an ended job rarely hears of again, and is read
from the tables when it does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from backfill_projector.rows import Changes, ChunkRow, JobRow

MAX_JOBS = 2_000
MAX_CHUNKS = 50_000  # chunk rows across the jobs kept: a few hundred bytes each


@dataclass(frozen=True, slots=True)
class Mark:
    """The position a commit wrote, and the token it wrote with it."""

    position: str
    token: str


@dataclass
class KnownRows:
    max_jobs: int = MAX_JOBS
    max_chunks: int = MAX_CHUNKS
    mark: Mark | None = None
    # Oldest first: a job folded again moves to the end, and the front is dropped when full.
    jobs: dict[str, JobRow] = field(default_factory=dict)
    chunks: dict[str, dict[int, ChunkRow]] = field(default_factory=dict)
    chunk_count: int = 0
    _staged: tuple[Changes, Mark] | None = None

    def check(self, position: str | None, token: str | None) -> None:
        """Forget everything unless the tables are as this projector's last commit left them."""
        if self.mark is None or (position, token) != (self.mark.position, self.mark.token):
            self.forget()

    def lend(self, changes: Changes, job_ids: set[str]) -> set[str]:
        """Put the known rows of `job_ids` into `changes`; returns the ids still to load."""
        missing = set()
        for job_id in job_ids:
            job = self.jobs.get(job_id)
            if job is None:
                missing.add(job_id)
                continue
            changes.jobs[job_id] = job
            for index, chunk in self.chunks[job_id].items():
                changes.chunks[(job_id, index)] = chunk
        return missing

    def stage(self, changes: Changes, mark: Mark) -> None:
        """What a batch folded, written with `mark`: remembered once its transaction commits."""
        self._staged = (changes, mark)

    def committed(self) -> None:
        if self._staged is None:
            return
        changes, self.mark = self._staged
        self._staged = None
        by_job: dict[str, dict[int, ChunkRow]] = {}
        for (job_id, index), chunk in changes.chunks.items():
            by_job.setdefault(job_id, {})[index] = chunk
        for job_id, job in changes.jobs.items():
            self._drop(job_id)
            if not job.is_terminal:
                chunks = by_job.get(job_id, {})
                self.jobs[job_id] = job
                self.chunks[job_id] = chunks
                self.chunk_count += len(chunks)
        while self.jobs and (len(self.jobs) > self.max_jobs or self.chunk_count > self.max_chunks):
            self._drop(next(iter(self.jobs)))

    def forget(self) -> None:
        self.mark = None
        self._staged = None
        self.jobs.clear()
        self.chunks.clear()
        self.chunk_count = 0

    def _drop(self, job_id: str) -> None:
        if self.jobs.pop(job_id, None) is not None:
            self.chunk_count -= len(self.chunks.pop(job_id))
