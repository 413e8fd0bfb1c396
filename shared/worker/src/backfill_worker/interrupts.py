"""Why a running job stops before its end; each is raised at the next check, within a poll."""

from __future__ import annotations


class JobInterrupted(Exception):
    """Base of the reasons a job stops before finishing its chunks."""


class JobCancelledError(JobInterrupted):
    """Someone asked to cancel the job; it ends `cancelled`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class JobTimeLimitError(JobInterrupted):
    """The job ran past its time limit; it ends `failed` with outcome `timeout`."""

    def __init__(self, limit_s: float) -> None:
        super().__init__(f"the job ran past its time limit of {limit_s:g} s")
        self.limit_s = limit_s


class HandBackError(JobInterrupted):
    """The worker is stopping: the job goes back to the queue and resumes elsewhere."""


class ClaimLostError(JobInterrupted):
    """Another worker took the job's entry over (this one looked dead): stop without a word."""
