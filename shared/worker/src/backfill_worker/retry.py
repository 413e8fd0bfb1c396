"""When to try a failed chunk again: exponential backoff with full jitter, bounded."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_tries: int = 5
    base_delay_s: float = 1.0
    max_delay_s: float = 60.0

    def delay_before(self, next_try: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before try number `next_try` (2 for the first retry)."""
        ceiling = min(self.max_delay_s, self.base_delay_s * 2 ** (next_try - 2))
        # Full jitter spreads retries of many jobs so they do not hit the source together.
        return (rng or random).uniform(ceiling / 2, ceiling)
