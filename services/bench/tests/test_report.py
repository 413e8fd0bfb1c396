"""The table: figures, ranges, targets, floor ratios and verdicts, lined up."""

from __future__ import annotations

from backfill_bench.jobs import JobShape
from backfill_bench.report import document, number, table
from backfill_bench.results import Metric, Run, Target, Workload


def _workloads() -> list[Workload]:
    floor = Workload("F1", "floor", "raw", [Metric("p50_ms", "p50 ms")])
    floor.runs = [Run({"p50_ms": v}) for v in (0.2, 0.25, 0.3)]
    copy = Workload("F2", "copy", "raw", [Metric("rows_per_s", "rows/s")])
    copy.runs = [Run({"rows_per_s": 400_000.0})]
    dispatch = Workload(
        "A1", "dispatch", "m", [Metric("p50_ms", "p50 ms", Target("<=", 2), ("F1", "p50_ms"))]
    )
    dispatch.runs = [Run({"p50_ms": v}, {"latency_ms": [v]}) for v in (2.5, 1.0, 3.0)]
    ingest = Workload(
        "A3",
        "ingest",
        "m",
        [Metric("bars_per_s", "bars/s", Target(">=", 200_000), ("F2", "rows_per_s"))],
    )
    ingest.runs = [Run({"bars_per_s": 180_000.0})]
    skipped = Workload(
        "A5", "console", "m", [Metric("p99_ms", "p99 ms")], skipped="skipped: no chromium"
    )
    return [floor, copy, dispatch, ingest, skipped]


def test_numbers_keep_a_few_significant_digits() -> None:
    assert [number(v) for v in (0.41234, 3.714, 27.44, 312.4, 215402.2)] == [
        "0.412", "3.71", "27.4", "312", "215,402",
    ]  # fmt: skip


def test_the_table_shows_median_range_target_floor_and_verdict() -> None:
    lines = table(_workloads()).splitlines()
    assert lines[0].split() == [
        "workload",
        "figure",
        "median",
        "min-max",
        "target",
        "vs",
        "floor",
        "verdict",
    ]
    assert set(lines[1]) <= {"-", " "}
    dispatch = next(line for line in lines if line.startswith("A1 dispatch"))
    # median 2.5 of (2.5, 1, 3); range 1-3; the floor's median is 0.25, so x10.0; 2.5 > 2: miss
    assert dispatch.split()[-6:] == ["2.50", "1.00-3.00", "<=", "2", "x10.0", "miss"]
    ingest = next(line for line in lines if line.startswith("A3 ingest"))
    assert ingest.split()[-7:] == ["180,000", "180,000-180,000", ">=", "200,000", "45", "%", "miss"]
    assert next(line for line in lines if line.startswith("A5")).endswith("skipped: no chromium")
    assert max(len(line) for line in lines) == len(lines[1])  # the rule spans every column


def test_the_document_keeps_every_raw_sample() -> None:
    doc = document(_workloads(), {"mode": "quick"})
    dispatch = next(w for w in doc["workloads"] if w["id"] == "A1")
    assert [run["samples"]["latency_ms"] for run in dispatch["runs"]] == [[2.5], [1.0], [3.0]]
    assert dispatch["summary"]["p50_ms"]["met"] is False
    assert doc["mode"] == "quick"


def test_job_shapes_hold_exactly_their_weekdays() -> None:
    one = JobShape(weekdays=1)  # Monday 2024-01-01
    assert (one.start.isoformat(), one.end.isoformat()) == (
        "2024-01-01T00:00:00+00:00", "2024-01-02T00:00:00+00:00",
    )  # fmt: skip
    fifty = JobShape(weekdays=50)  # ten weeks: the range ends after the tenth Friday
    assert (fifty.end - fifty.start).days == 7 * 9 + 5
    assert (fifty.chunks, fifty.bars) == (50, 19_500)
