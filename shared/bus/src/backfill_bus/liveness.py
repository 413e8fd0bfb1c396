"""Liveness for the services that serve no HTTP (workers, projector): a file touched on progress.

A container's healthcheck runs `python -m backfill_bus.liveness FILE --max-age S`, which says
healthy only while the file was touched within S seconds. The workers touch it after each
heartbeat that reached Redis while their command subscriber was still consuming; the projector
after each read of the event log. A process that hangs, or whose subscriber stopped while the
process lives on (FastStream can stop a subscriber silently), goes unhealthy on its own.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class LivenessSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BACKFILL_", extra="ignore")

    # Touched on progress, for a container healthcheck; unset (the default) touches nothing.
    liveness_file: Path | None = None


class Liveness:
    """Touches `path` at most once per `min_interval_s`; a `None` path does nothing."""

    def __init__(self, path: Path | None, min_interval_s: float = 1.0) -> None:
        self.path = path
        self.min_interval_s = min_interval_s
        self._last = float("-inf")

    def beat(self) -> None:
        if self.path is None:
            return
        now = time.monotonic()
        if now - self._last < self.min_interval_s:
            return
        self._last = now
        try:
            self.path.touch()
        except OSError:  # a read-only or missing folder: the healthcheck will say so
            return


def age_of(path: Path) -> float | None:
    """Seconds since the file was last touched, or None when there is no such file."""
    try:
        return max(0.0, time.time() - path.stat().st_mtime)
    except FileNotFoundError:
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m backfill_bus.liveness",
        description="Exit 0 when FILE was touched within --max-age seconds, else 1.",
    )
    parser.add_argument("file", type=Path)
    parser.add_argument("--max-age", type=float, default=30.0, help="seconds (default 30)")
    args = parser.parse_args(argv)
    age = age_of(args.file)
    if age is None:
        print(f"unhealthy: {args.file} does not exist (not started yet?)")
        return 1
    if age > args.max_age:
        print(f"unhealthy: no progress for {age:.0f} s (limit {args.max_age:g} s)")
        return 1
    print(f"healthy: progress {age:.1f} s ago")
    return 0


if __name__ == "__main__":
    sys.exit(main())
