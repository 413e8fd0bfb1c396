"""`python -m backfill_sim` (also `backfill-sim-worker`): a worker hosting the sim source."""

from __future__ import annotations

from backfill_sim.source import SimSource
from backfill_worker import run_worker


def main() -> None:
    run_worker(SimSource, service="sim-worker")


if __name__ == "__main__":
    main()
