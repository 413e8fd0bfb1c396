"""Chaos suite: a fresh PostgreSQL database per scenario, and the figures each scenario measures.

Every scenario writes its figures to `artifacts/chaos/<scenario>.json` (git-ignored) and its
processes' logs to `artifacts/chaos/logs/<scenario>/`, and adds a one-line summary that is
printed at the end of the run (no `-s` needed), so CI output shows what was measured.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.chaos.harness import write_figures
from tests.support.databases import PostgresDatabases

SUMMARY = pytest.StashKey[list[str]]()
Figures = dict[str, Any]


@pytest.fixture
async def chaos_database_url(
    postgres_databases: PostgresDatabases | None,
) -> AsyncIterator[str]:
    """A fresh PostgreSQL database of this scenario's own (the chaos suite is PostgreSQL-only)."""
    if postgres_databases is None:
        pytest.skip(
            "chaos scenarios run on PostgreSQL: set BACKFILL_TEST_POSTGRES_URL "
            "(CI sets it and requires it)"
        )
    url = await postgres_databases.create()
    yield url
    await postgres_databases.drop(url)


@pytest.fixture
def artifacts_dir(request: pytest.FixtureRequest) -> Path:
    path = request.config.rootpath / "artifacts" / "chaos"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def chaos_seed() -> int:
    """CHAOS_SEED when set (to replay a run's choices), else from the clock; figures keep it."""
    return int(os.environ.get("CHAOS_SEED") or time.time_ns() % 2**31)


@pytest.fixture
def figures(
    request: pytest.FixtureRequest, artifacts_dir: Path
) -> Iterator[Callable[[str], Figures]]:
    """`figures("scenario")` gives the dict a scenario fills; written out even when it fails."""
    made: list[Figures] = []
    started = time.monotonic()

    def make(scenario: str) -> Figures:
        record: Figures = {"scenario": scenario, "passed": False}
        made.append(record)
        return record

    yield make
    for record in made:
        record.setdefault("duration_s", round(time.monotonic() - started, 1))
        write_figures(artifacts_dir / f"{record['scenario']}.json", record)
        request.config.stash.setdefault(SUMMARY, []).append(summary_line(record))


def summary_line(f: Figures) -> str:
    """One line per scenario: the figures that are present, in a fixed order."""
    parts = [f"{f['scenario']}: {'PASS' if f.get('passed') else 'FAIL'}"]
    if "jobs" in f:
        parts.append(f"{f.get('jobs_succeeded', '?')}/{f['jobs']} jobs succeeded")
    for key, label in (
        ("worker_kills", "worker kills survived"),
        ("projector_kills", "projector kills survived"),
        ("redis_restarts", "Redis restarts survived"),
    ):
        if key in f:
            parts.append(f"{f[key]} {label}")
    if "bars_expected" in f:
        parts.append(f"bars {f.get('bars_stored', '?')}/{f['bars_expected']} stored")
    if "duplicates" in f:
        parts.append(f"{f['duplicates']} duplicates")
    if "redone_chunks" in f:
        parts.append(f"{f['redone_chunks']} chunks redone")
    if "malformed" in f:
        parts.append(
            f"{f.get('malformed_dead_lettered', '?')}/{f['malformed']} malformed dead-lettered"
        )
    for key, label in (
        ("resume_after_kill_s", "resume after kill"),
        ("resume_after_restart_s", "resume after restart"),
        ("projector_catch_up_s", "projector catch-up"),
        ("cancel_to_event_s", "cancel->event"),
        ("cancel_to_status_s", "cancel->status"),
    ):
        if isinstance(f.get(key), dict) and f[key].get("count"):
            parts.append(f"{label} median {f[key]['median']} s worst {f[key]['worst']} s")
    if "handoff_gap_s" in f:
        exit_s = f.get("exit_after_sigterm_s")
        parts.append(f"handoff gap {f['handoff_gap_s']} s, exit after SIGTERM {exit_s} s")
    parts.append(f"({f.get('duration_s', '?')} s)")
    if not f.get("passed") and f.get("failure"):
        parts.append(f"-- {str(f['failure'])[:200]}")
    return ", ".join(parts)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    lines = config.stash.get(SUMMARY, [])
    if lines:
        terminalreporter.section("chaos figures (artifacts/chaos/*.json)")
        for line in lines:
            terminalreporter.write_line(line)
