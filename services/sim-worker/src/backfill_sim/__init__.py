"""The synthetic `sim` source: deterministic bars on a weekday calendar, faults on request."""

from backfill_sim.source import SimSource

__all__ = ["SimSource"]
