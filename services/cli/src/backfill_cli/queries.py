"""`backfill jobs` and `backfill stats`: read-only views of the API's projections."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TextIO

from backfill_cli.api_client import ApiClient
from backfill_cli.models import STATUSES, Job, Stats
from backfill_cli.progress import chunks
from backfill_cli.tables import duration, format_table, local_time, percent

ERROR_WIDTH = 60


def list_jobs(
    client: ApiClient, filters: Mapping[str, str | int | None], out: TextIO, err: TextIO
) -> int:
    page = client.jobs(filters)
    if not page.jobs:
        out.write("no jobs\n")
        return 0
    out.write(jobs_table(page.jobs) + "\n")
    if page.next_cursor:
        err.write(f"(showing the first {len(page.jobs)}; more match: raise --limit)\n")
    return 0


def jobs_table(jobs: list[Job]) -> str:
    headers = ["JOB ID", "SYMBOL", "SOURCE", "BAR", "STATUS", "DONE", "CHUNKS", "BARS"]
    headers += ["SUBMITTED", "FINISHED"]
    with_errors = any(j.error for j in jobs)
    if with_errors:
        headers.append("ERROR")
    rows = []
    for job in jobs:
        row = [
            job.job_id,
            job.symbol,
            job.source,
            job.bar_size,
            job.status,
            f"{round(job.progress.fraction * 100)}%",
            chunks(job).removesuffix(" chunks"),
            f"{job.progress.bars_stored:,}",
            local_time(job.submitted_at),
            local_time(job.finished_at),
        ]
        if with_errors:
            row.append(_clip(str(job.error)) if job.error else "")
        rows.append(row)
    return format_table(headers, rows, right={5, 6, 7})


def show_stats(client: ApiClient, out: TextIO) -> int:
    out.write(stats_text(client.stats()) + "\n")
    return 0


def stats_text(stats: Stats) -> str:
    statuses = _ordered_statuses(stats)
    summary = [
        ("jobs", f"{stats.jobs_total:,}"),
        *((f"  {s}", f"{stats.by_status.get(s, 0):,}") for s in statuses),
        ("success rate", percent(stats.success_rate)),
        ("mean duration", duration(stats.mean_duration_s)),
        ("bars stored", f"{stats.bars_stored:,}"),
    ]
    label_width = max(len(label) for label, _ in summary)
    value_width = max(len(value) for _, value in summary)
    lines = [f"{label:<{label_width}}  {value:>{value_width}}" for label, value in summary]
    if stats.by_source:
        rows = [
            [source, *(f"{counts.get(s, 0):,}" for s in statuses)]
            for source, counts in sorted(stats.by_source.items())
        ]
        right = set(range(1, len(statuses) + 1))
        lines += ["", format_table(["SOURCE", *(s.upper() for s in statuses)], rows, right)]
    return "\n".join(lines)


def _ordered_statuses(stats: Stats) -> list[str]:
    """The known statuses in lifecycle order, then any the API added that we do not know yet."""
    seen = set(stats.by_status).union(*(set(c) for c in stats.by_source.values()))
    return [*STATUSES, *sorted(seen - set(STATUSES))]


def _clip(text: str) -> str:
    return text if len(text) <= ERROR_WIDTH else text[: ERROR_WIDTH - 3] + "..."
