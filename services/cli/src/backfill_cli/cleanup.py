"""`backfill cleanup`: ask the API to delete old finished jobs (never their bars)."""

from __future__ import annotations

from typing import TextIO

from backfill_cli.api_client import ApiClient
from backfill_cli.tables import local_time


def cleanup(client: ApiClient, days: int | None, out: TextIO) -> int:
    cutoff = client.cleanup(days)
    kept = "the API's default retention" if days is None else f"--days {days}"
    out.write(
        f"cleanup requested ({kept}): finished jobs that ended before {cutoff}"
        f" ({local_time(cutoff)} local time) will be deleted with their chunks and history\n"
        "bars are kept; the projector deletes when it reaches the request on the event log\n"
    )
    return 0
