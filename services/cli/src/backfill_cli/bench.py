"""`backfill bench`: the benchmark, run as `python -m backfill_bench` in a child process.

The bench is a workspace member of its own (services/bench); the CLI never imports it, so a
CLI installed without it still works, and says how to get it.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence

from backfill_cli.processes import runnable_module

MODULE = "backfill_bench"


class BenchMissingError(Exception):
    """Raised when `python -m backfill_bench` cannot run in this environment."""


def run(args: Sequence[str]) -> int:
    """Every argument goes to the bench (`backfill bench --help` lists them); its exit code."""
    if not runnable_module(MODULE):
        raise BenchMissingError(
            f"cannot run {MODULE} with `python -m` in {sys.prefix}: install the whole workspace"
            " with `uv sync --all-packages`"
        )
    return subprocess.call([sys.executable, "-m", MODULE, *args])
