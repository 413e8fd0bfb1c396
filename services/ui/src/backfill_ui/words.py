"""What the console says: statuses, outcomes and events in plain words, times and durations."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from backfill_readmodel.views import JobView

STATUS_COLORS = {
    "queued": "grey-6",
    "running": "primary",
    "retrying": "orange",
    "succeeded": "positive",
    "failed": "negative",
    "cancelled": "grey-8",
}
STATUSES = tuple(STATUS_COLORS)

# Chunk statuses as the projector folds them (fold.py); "waiting" comes from job.waiting events.
CHUNK_COLORS = {
    "planned": "#bdbdbd",
    "done": "#21ba45",
    "no_data": "#90caf9",
    "retrying": "#f2c037",
    "waiting": "#9c27b0",
    "failed": "#c10015",
}
CHUNK_WORDS = {
    "planned": "not yet collected",
    "done": "done",
    "no_data": "no data",
    "retrying": "retrying",
    "waiting": "waiting for the source",
    "failed": "failed",
}

OUTCOME_WORDS = {
    "no_data": "the source has no bars for this window",
    "timeout": "the source did not answer in time",
    "upstream_error": "the source answered with an error",
    "rate_limited": "the source asked us to slow down",
    "pacing": "the source's pacing rules made it wait",
    "gateway_down": "the IB Gateway could not be reached",
    "invalid_symbol": "the source does not know this symbol",
    "no_permission": "the account has no permission for this data",
    "invalid_request": "the source refused the request",
    "cancelled": "cancelled",
    "dead_lettered": "the command could not be used and went to the dead-letter stream",
    "internal_error": "the worker hit an internal error",
    "in_flight": "another job is fetching the same chunk",
}


def outcome_words(outcome: str | None) -> str:
    if not outcome:
        return ""
    return OUTCOME_WORDS.get(outcome, outcome.replace("_", " "))


def problem(outcome: str | None, message: str | None) -> str:
    """`<outcome in words>: <the source's own message>`, either part optional."""
    parts = [part for part in (outcome_words(outcome), message or "") if part]
    if len(parts) == 2 and parts[1].lower() == parts[0].lower():
        return parts[0]
    return ": ".join(parts)


def event_words(kind: str, data: dict[str, Any], attempt: int = 1) -> str:
    """One line of a job's timeline."""
    chunk = data.get("chunk")
    if kind == "job.submitted":
        return "Submitted" if attempt == 1 else f"Retry requested (attempt {attempt})"
    if kind == "job.started":
        planned = len(data.get("chunks") or [])
        resumed = len(data.get("resumed_chunks") or [])
        text = f"Started by {data.get('worker_id', '?')}: {planned} chunk(s) planned"
        return text + (f", {resumed} already collected" if resumed else "")
    if kind == "chunk.collected":
        bars = int(data.get("bars") or 0)
        text = f"Chunk {chunk}: {bars} bars" if bars else f"Chunk {chunk}: no data"
        shared_from = data.get("shared_from")
        return f"{text}, from job {shared_from}'s request" if shared_from else text
    if kind == "chunk.failed":
        then = "will retry" if data.get("will_retry") else "gave up"
        text = problem(data.get("outcome"), data.get("message"))
        return f"Chunk {chunk} failed ({then}): {text}"
    if kind == "job.waiting":
        until = data.get("until")
        text = problem(data.get("outcome"), data.get("message"))
        what = "Planning waits" if chunk is None else f"Chunk {chunk} waits"
        return f"{what}: {text}" + (f" (until {until})" if until else "")
    if kind == "job.retrying":
        delay = float(data.get("delay_s") or 0)
        return (
            f"Chunk {chunk}: try {data.get('next_try')} in {duration(delay)} "
            f"({outcome_words(data.get('outcome'))})"
        )
    if kind == "job.succeeded":
        return f"Succeeded: {data.get('chunks', 0)} chunk(s), {data.get('bars', 0)} bars"
    if kind == "job.failed":
        return f"Failed: {problem(data.get('outcome'), data.get('message'))}"
    if kind == "job.cancelled":
        return f"Cancelled: {data.get('reason') or 'by request'}"
    if kind == "job.handed_back":
        return f"Handed back by {data.get('worker_id', '?')}: {data.get('reason', '')}"
    if kind == "job.webhook":
        tries = data.get("tries", 1)
        if data.get("ok"):
            return f"Posted to the webhook {data.get('url')} (HTTP {data.get('status_code')})"
        return f"Webhook {data.get('url')} failed after {tries} tries: {data.get('message')}"
    return kind


def waiting_words(job: JobView) -> str:
    """What an unfinished job waits for: no live worker (`notice`) or its source (`note`)."""
    if job.status not in ("queued", "running", "retrying"):
        return ""
    parts = [part for part in (job.notice, job.note and f"waiting: {job.note}") if part]
    return "; ".join(parts)


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = max(0.0, seconds)
    if seconds < 10:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    for size, unit, smaller, small_unit in (
        (86400, "d", 3600, "h"),
        (3600, "h", 60, "min"),
        (60, "min", 1, "s"),
    ):
        if whole >= size:
            rest = (whole % size) // smaller
            return f"{whole // size} {unit}" + (f" {rest} {small_unit}" if rest else "")
    return f"{whole} s"


def when(value: datetime | None) -> str:
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M:%S UTC")


def ago(value: datetime | None, now: datetime) -> str:
    if value is None:
        return "never"
    return f"{duration((now - value).total_seconds())} ago"


def day(value: datetime) -> str:
    return value.strftime("%Y-%m-%d")
