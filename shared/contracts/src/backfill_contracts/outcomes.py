"""Typed outcomes: why a chunk or a job did not simply succeed, and whether trying again helps."""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    NO_DATA = "no_data"
    TIMEOUT = "timeout"
    UPSTREAM_ERROR = "upstream_error"
    RATE_LIMITED = "rate_limited"
    PACING = "pacing"
    GATEWAY_DOWN = "gateway_down"
    INVALID_SYMBOL = "invalid_symbol"
    NO_PERMISSION = "no_permission"
    INVALID_REQUEST = "invalid_request"
    CANCELLED = "cancelled"
    DEAD_LETTERED = "dead_lettered"
    INTERNAL_ERROR = "internal_error"
    # Not a failure: a job waits while another job fetches the same chunk (worker sharing.py).
    IN_FLIGHT = "in_flight"

    @property
    def is_transient(self) -> bool:
        """True when the same request may succeed later, so a retry with backoff makes sense."""
        return self in _TRANSIENT


_TRANSIENT = frozenset(
    {
        Outcome.TIMEOUT,
        Outcome.UPSTREAM_ERROR,
        Outcome.RATE_LIMITED,
        Outcome.PACING,
        Outcome.GATEWAY_DOWN,
    }
)
