"""PNG charts of the raw samples: latency CDFs, throughput over time, memory over the soak."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display: set before pyplot is imported

import matplotlib.pyplot as plt

from backfill_bench.results import Workload
from backfill_bench.stats import ecdf

LATENCY_IDS = ("F1", "A1-redis", "A1-http", "C1", "A4", "A5")


def _by_id(workloads: Sequence[Workload]) -> dict[str, Workload]:
    return {w.id: w for w in workloads if w.runs and not w.skipped}


def latency_cdf(workloads: Sequence[Workload], path: Path) -> Path | None:
    found = _by_id(workloads)
    shown = [found[i] for i in LATENCY_IDS if i in found]
    if not shown:
        return None
    figure, axes = plt.subplots(figsize=(9, 5.5), dpi=110)
    for workload in shown:
        samples = [s for run in workload.runs for s in run.samples.get("latency_ms", [])]
        if not samples:
            continue
        xs, ys = ecdf([max(s, 1e-3) for s in samples])
        axes.step(xs, ys, where="post", label=f"{workload.id} {workload.name} (n={len(xs)})")
    axes.set_xscale("log")
    axes.set_xlabel("latency, ms (log scale)")
    axes.set_ylabel("fraction of samples at or below")
    axes.set_ylim(0, 1.01)
    axes.axhline(0.5, color="grey", linewidth=0.5, linestyle=":")
    axes.axhline(0.99, color="grey", linewidth=0.5, linestyle=":")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(loc="lower right", fontsize=8)
    axes.set_title("Latency CDFs (every run pooled)")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path


def throughput(workloads: Sequence[Workload], path: Path) -> Path | None:
    found = _by_id(workloads)
    panels = [
        (found.get("A2"), "A2: jobs projected succeeded", "jobs", None),
        (found.get("A3"), "A3: bars stored (projection)", "bars", found.get("F2")),
    ]
    panels = [p for p in panels if p[0] is not None]
    if not panels:
        return None
    figure, axes_list = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.5), dpi=110)
    if len(panels) == 1:
        axes_list = [axes_list]
    for axes, (workload, title, unit, floor) in zip(axes_list, panels, strict=True):
        assert workload is not None
        for number, run in enumerate(workload.runs, 1):
            _line(axes, run.samples.get("timeline", []), f"run {number}")
        if floor is not None:
            first = floor.runs[0].samples.get("timeline", []) if floor.runs else []
            _line(axes, first, "COPY floor (F2, run 1)", linestyle="--", color="black")
        axes.set_title(title)
        axes.set_xlabel("seconds since the first submit")
        axes.set_ylabel(unit)
        axes.grid(True, alpha=0.3)
        axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path


def memory(workloads: Sequence[Workload], path: Path) -> Path | None:
    workload = _by_id(workloads).get("A7")
    if workload is None:
        return None
    figure, axes = plt.subplots(figsize=(9, 5), dpi=110)
    offset = 0.0
    colors: dict[str, Any] = {}
    for run in workload.runs:
        timeline = run.samples.get("rss_mb", [])
        for name in timeline[0][1] if timeline else {}:
            xs = [offset + t for t, _ in timeline]
            ys = [rss[name] for _, rss in timeline]
            line = axes.plot(xs, ys, color=colors.get(name), label=None if name in colors else name)
            colors.setdefault(name, line[0].get_color())
        offset += timeline[-1][0] if timeline else 0.0
    axes.set_xlabel("seconds of soak (runs back to back)")
    axes.set_ylabel("RSS, MB")
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=8)
    axes.set_title("A7: resident memory of each service")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path


def _line(axes: Any, timeline: list[Any], label: str, **style: Any) -> None:
    if timeline:
        axes.plot([t for t, _ in timeline], [v for _, v in timeline], label=label, **style)


def draw_all(workloads: Sequence[Workload], out: Path) -> list[Path]:
    made = [
        latency_cdf(workloads, out / "latency-cdf.png"),
        throughput(workloads, out / "throughput.png"),
        memory(workloads, out / "memory.png"),
    ]
    return [path for path in made if path is not None]
