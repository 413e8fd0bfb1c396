"""`backfill submit`: one job per symbol, then follow them to the end."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TextIO

from backfill_cli.api_client import ApiClient, ApiRejectedError, ApiUnreachableError, JobRequest
from backfill_cli.models import Job
from backfill_cli.progress import ProgressBoard, final_line

POLL_INTERVAL_S = 0.3
# While following, the API may be restarting (`backfill dev` restarts it when it dies): only
# an API gone for this long means it is really gone.
UNREACHABLE_GRACE_S = 30.0

EXIT_OK = 0
EXIT_NOT_ALL_SUCCEEDED = 1
EXIT_REJECTED = 2
EXIT_INTERRUPTED = 130


@dataclass(frozen=True)
class Submitted:
    symbol: str
    job_id: str


def submit(
    client: ApiClient,
    requests: Sequence[JobRequest],
    *,
    follow: bool,
    out: TextIO,
    err: TextIO,
    board: ProgressBoard | None = None,
) -> int:
    submitted: list[Submitted] = []
    rejected: dict[str, list[str]] = {}
    for request in requests:
        try:
            job_id = client.submit(request)
        except ApiRejectedError as exc:
            rejected[request.symbol] = exc.reasons
            continue
        submitted.append(Submitted(request.symbol, job_id))
        out.write(f"submitted {request.symbol}: job {job_id}\n")
    out.flush()
    if rejected:
        for symbol, reasons in rejected.items():
            err.write(f"rejected {symbol}:\n")
            err.writelines(f"  - {reason}\n" for reason in reasons)
        if submitted:
            err.write(
                f"{len(submitted)} other job(s) were submitted and go on; see `backfill jobs`\n"
            )
        return EXIT_REJECTED
    if not follow:
        return EXIT_OK
    return _follow_to_end(client, submitted, board or ProgressBoard(err), out, err)


def _follow_to_end(
    client: ApiClient, submitted: list[Submitted], board: ProgressBoard, out: TextIO, err: TextIO
) -> int:
    try:
        jobs = follow_jobs(client, submitted, board.update)
    except KeyboardInterrupt:
        board.close()
        err.write("\nstopped following; the jobs go on: see `backfill jobs`\n")
        return EXIT_INTERRUPTED
    board.close()
    width = max(len(j.symbol) for j in jobs)
    out.writelines(final_line(job, width) + "\n" for job in jobs)
    out.flush()
    ok = all(job.status == "succeeded" for job in jobs)
    return EXIT_OK if ok else EXIT_NOT_ALL_SUCCEEDED


def follow_jobs(
    client: ApiClient,
    submitted: Sequence[Submitted],
    show: Callable[[list[Job]], None],
    poll_interval: float = POLL_INTERVAL_S,
) -> list[Job]:
    """Poll each job until every one is finished; their last states, in submission order."""
    # The API may not have projected a job yet right after it was accepted (a 404): it is
    # queued all the same, which is what it says until the API knows better.
    jobs = {s.job_id: Job(job_id=s.job_id, symbol=s.symbol) for s in submitted}
    unreachable_since: float | None = None
    while True:
        try:
            for job_id, job in jobs.items():
                if not job.finished:
                    jobs[job_id] = _merge(job, client.job(job_id))
            unreachable_since = None
        except ApiUnreachableError:
            now = time.monotonic()
            unreachable_since = unreachable_since or now
            if now - unreachable_since > UNREACHABLE_GRACE_S:
                raise
        show(list(jobs.values()))
        if all(job.finished for job in jobs.values()):
            return list(jobs.values())
        time.sleep(poll_interval)


def _merge(previous: Job, fresh: Job | None) -> Job:
    if fresh is None:
        return previous
    return fresh if fresh.symbol else replace(fresh, symbol=previous.symbol)
