"""`backfill coverage`: what a series holds, and each gap with its reason, from the API."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TextIO

from backfill_cli.tables import format_table

# The API's reasons, in plain words.
REASONS = {
    "never_requested": "never requested",
    "no_data": "source had no data",
    "partial": "partial (source sent part of the window)",
    "failed": "failed (a job did not collect it)",
}


def show_coverage(body: Mapping[str, Any], out: TextIO) -> int:
    series = "/".join(str(body.get(k, "?")) for k in ("source", "symbol", "bar_size", "price_type"))
    count = int(body.get("count") or 0)
    if not count and not body.get("gaps"):
        out.write(f"{series}: no bars stored\n")
        return 0
    expected, held = int(body.get("expected") or 0), int(body.get("held") or 0)
    share = f"{100 * held / expected:.1f}%" if expected else "-"
    lines = [
        f"series    {series} (calendar {body.get('calendar', '?')})",
        f"stored    {count:,} bars, {body.get('first') or '-'} to {body.get('last') or '-'}",
        f"range     {body.get('start') or '-'} to {body.get('end') or '-'}: "
        f"{held:,} of {expected:,} expected bars ({share})",
    ]
    gaps = body.get("gaps") or []
    if not gaps:
        lines.append("gaps      none")
    else:
        rows = [
            [str(g.get("start")), str(g.get("end")), f"{int(g.get('bars') or 0):,}",
             REASONS.get(str(g.get("kind")), str(g.get("kind")))]
            for g in gaps
        ]  # fmt: skip
        lines += ["", format_table(["GAP FROM", "TO", "BARS", "WHY"], rows, right={2})]
    out.write("\n".join(lines) + "\n")
    return 0
