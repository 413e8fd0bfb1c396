"""`backfill projector rebuild`: replay the event log into fresh projections."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from types import FrameType

from backfill_cli.processes import runnable_module
from backfill_cli.settings import StackSettings

PROJECTOR_MODULE = "backfill_projector"


class ProjectorMissingError(Exception):
    """Raised when the projector is not installed in this Python environment."""


def rebuild(
    settings: StackSettings,
    base_env: Mapping[str, str] | None = None,
    module: str = PROJECTOR_MODULE,
) -> int:
    """Run `python -m <module> rebuild` in the foreground; its exit code."""
    if not runnable_module(module):
        raise ProjectorMissingError(
            f"cannot run {module} with `python -m` in {sys.prefix}:"
            " install the whole workspace with `uv sync --all-packages`"
        )
    env = settings.child_env(os.environ if base_env is None else base_env)
    proc = subprocess.Popen([sys.executable, "-m", module, "rebuild"], env=env)

    # The terminal's Ctrl-C reaches the child by itself (same process group): the parent only
    # waits for the child to finish its rollback rather than dying first. SIGTERM, sent to us
    # alone, is passed on.
    def forward(signum: int, _frame: FrameType | None) -> None:
        if signum == signal.SIGTERM:
            proc.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        code = proc.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    # A child killed by a signal has a negative code; a shell reports that as 128 + signal.
    return code if code >= 0 else 128 - code
