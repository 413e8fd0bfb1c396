"""The results as a table for people and as JSON (every raw sample) for programs."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from backfill_bench.results import Metric, Workload

HEADER = ("workload", "figure", "median", "min-max", "target", "vs floor", "verdict")


def number(value: float) -> str:
    """Few significant digits, thousands separated: 0.412, 3.71, 27.4, 312, 215,402."""
    size = abs(value)
    if size >= 1000:
        return f"{value:,.0f}"
    if size >= 100:
        return f"{value:.0f}"
    if size >= 10:
        return f"{value:.1f}"
    if size >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def floor_ratio(metric: Metric, median: float, workloads: Sequence[Workload]) -> str:
    """A latency as a multiple of its floor (x12.5), a throughput as a share of it (45 %)."""
    if metric.floor is None:
        return ""
    floor_id, key = metric.floor
    floor = next((w for w in workloads if w.id == floor_id), None)
    spread = None if floor is None else floor.spread(key)
    if spread is None or spread.median <= 0:
        return ""
    ratio = median / spread.median
    return f"x{ratio:.1f}" if key.endswith("_ms") else f"{ratio * 100:.0f} %"


def rows(workloads: Sequence[Workload]) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for workload in workloads:
        title = f"{workload.id} {workload.name}"
        if workload.skipped:
            out.append((title, "", "", "", "", "", workload.skipped))
            continue
        for metric in workload.metrics:
            spread = workload.spread(metric.key)
            if spread is None:
                out.append((title, metric.label, "", "", "", "", "no figure"))
                continue
            verdict = ""
            if metric.target is not None:
                verdict = "pass" if metric.target.met(spread.median) else "miss"
            out.append(
                (
                    title,
                    metric.label,
                    number(spread.median),
                    f"{number(spread.low)}-{number(spread.high)}",
                    "" if metric.target is None else str(metric.target),
                    floor_ratio(metric, spread.median, workloads),
                    verdict,
                )
            )
            title = ""  # the workload's name only on its first row
    return out


def table(workloads: Sequence[Workload]) -> str:
    lines = [HEADER, *rows(workloads)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(HEADER))]
    numeric = {2, 3, 5}  # right-aligned columns

    def render(line: tuple[str, ...]) -> str:
        cells = [
            cell.rjust(widths[i]) if i in numeric else cell.ljust(widths[i])
            for i, cell in enumerate(line)
        ]
        return "  ".join(cells).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([render(HEADER), rule, *(render(line) for line in lines[1:])])


def methods(workloads: Sequence[Workload]) -> str:
    """How each figure was taken, one line per workload, to print under the table."""
    return "\n".join(f"{w.id}: {w.method}" for w in workloads)


def document(workloads: Sequence[Workload], meta: dict[str, Any]) -> dict[str, Any]:
    return {
        **meta,
        "workloads": [
            {
                "id": w.id,
                "name": w.name,
                "method": w.method,
                "skipped": w.skipped,
                "summary": {m.key: _summary(w, m, workloads) for m in w.metrics if w.spread(m.key)},
                "runs": [
                    {"figures": run.figures, "samples": run.samples, "notes": run.notes}
                    for run in w.runs
                ],
            }
            for w in workloads
        ],
    }


def _summary(workload: Workload, metric: Metric, workloads: Sequence[Workload]) -> dict[str, Any]:
    spread = workload.spread(metric.key)
    assert spread is not None
    return {
        "label": metric.label,
        "median": spread.median,
        "min": spread.low,
        "max": spread.high,
        "target": None if metric.target is None else str(metric.target),
        "met": None if metric.target is None else metric.target.met(spread.median),
        "vs_floor": floor_ratio(metric, spread.median, workloads) or None,
    }


def write_json(path: Path, workloads: Sequence[Workload], meta: dict[str, Any]) -> None:
    path.write_text(json.dumps(document(workloads, meta), indent=1) + "\n")
