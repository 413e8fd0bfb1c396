"""Starting and signalling child processes: the OS-level details the supervisor relies on."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import importlib.util
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path

# <linux/prctl.h>: ask the kernel to signal the child when its parent dies.
_PR_SET_PDEATHSIG = 1


@cache
def _parent_death_signal() -> Callable[[], None] | None:
    """A preexec hook that makes a child get SIGTERM if the supervisor is killed with -9.

    Without it a killed `backfill dev` leaves Redis and the API running, holding their ports.
    libc is loaded here, in the parent: the forked child must only make the one system call.
    """
    if sys.platform != "linux":
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    sigterm = int(signal.SIGTERM)

    def set_parent_death_signal() -> None:
        prctl(_PR_SET_PDEATHSIG, sigterm)

    return set_parent_death_signal


async def spawn(argv: Sequence[str], env: dict[str, str] | None) -> asyncio.subprocess.Process:
    """Start `argv` with stdout and stderr merged into one pipe, in its own process group.

    Its own group, so the terminal's Ctrl-C reaches only the supervisor, which then stops the
    services one by one in order, rather than every process dying at once in no order.
    """
    return await asyncio.create_subprocess_exec(
        *argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        process_group=0,
        preexec_fn=_parent_death_signal(),
    )


def signal_group(proc: asyncio.subprocess.Process, sig: signal.Signals) -> None:
    """Signal the child's whole process group, so helpers it started stop with it."""
    # ProcessLookupError: it exited between our check and the signal.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


def describe_exit(code: int | None) -> str:
    if code is None:
        return "could not be started"
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


def runnable_module(name: str) -> bool:
    """True if `python -m name` can run: the module exists, and a package has a __main__.

    Checked without importing anything, so a broken service cannot crash the CLI itself.
    """
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return False
    if spec is None:
        return False
    if spec.submodule_search_locations is None:
        return True
    return any((Path(d) / "__main__.py").is_file() for d in spec.submodule_search_locations)
