"""IB's historical-data pacing rules, as data, and the monitor that enforces them.

One monitor per gateway: every client counts against the same budget, as on one IB login.
A request that breaks a rule is still counted in the windows (IB sees it arrive), so a
collector that keeps hammering keeps being refused.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

#: identical: same contract, end, duration, bar size, whatToShow, useRTH;
#: contract: same contract + exchange + whatToShow; all: every request; open: unanswered now.
Scope = Literal["identical", "contract", "all", "open"]


@dataclass(frozen=True)
class PacingRule:
    name: str
    scope: Scope
    #: The most requests (weighted) allowed in the window, this one included; for "open",
    #: the most open at once.
    limit: int
    #: Sliding window in seconds, multiplied by the gateway's pacing_scale ("open": unused).
    window_s: float = 0.0
    #: Only requests for bars of at most this many seconds count (None: every bar size).
    max_bar_seconds: int | None = None
    #: How much a BID_ASK request counts.
    bid_ask_weight: int = 1


DEFAULT_RULES: tuple[PacingRule, ...] = (
    PacingRule("identical_within_15s", "identical", limit=1, window_s=15.0),
    PacingRule("same_contract_6_in_2s", "contract", limit=5, window_s=2.0, bid_ask_weight=2),
    PacingRule(
        "small_bars_60_in_10min",
        "all",
        limit=60,
        window_s=600.0,
        max_bar_seconds=30,
        bid_ask_weight=2,
    ),
    PacingRule("open_50", "open", limit=50),
)


@dataclass(frozen=True)
class PacedRequest:
    """What the rules look at in a historical request."""

    con_id: int
    exchange: str
    what_to_show: str
    end_datetime: str
    duration: str
    bar_size: str
    use_rth: bool
    bar_seconds: int

    def key(self, scope: Scope) -> tuple[object, ...]:
        if scope == "identical":
            return (
                self.con_id,
                self.exchange,
                self.what_to_show,
                self.end_datetime,
                self.duration,
                self.bar_size,
                self.use_rth,
            )
        if scope == "contract":
            return (self.con_id, self.exchange, self.what_to_show)
        return ()


class PacingMonitor:
    """Not thread-safe: used on the gateway's loop only."""

    def __init__(self, rules: Sequence[PacingRule], scale: float) -> None:
        self.rules = tuple(rules)
        self.scale = scale
        self._history: deque[tuple[float, PacedRequest]] = deque()
        self._horizon = max((r.window_s for r in self.rules), default=0.0) * scale
        self.open_count = 0
        self.max_open_seen = 0

    def check(self, request: PacedRequest, now: float) -> PacingRule | None:
        """Count the request and return the first rule it breaks (None if it is fine)."""
        while self._history and self._history[0][0] <= now - self._horizon:
            self._history.popleft()
        broken = next((rule for rule in self.rules if self._breaks(rule, request, now)), None)
        self._history.append((now, request))
        return broken

    def _breaks(self, rule: PacingRule, request: PacedRequest, now: float) -> bool:
        if rule.max_bar_seconds is not None and request.bar_seconds > rule.max_bar_seconds:
            return False
        if rule.scope == "open":
            return self.open_count + 1 > rule.limit
        key = request.key(rule.scope)
        since = now - rule.window_s * self.scale
        total = self._weight(rule, request)
        for when, earlier in reversed(self._history):
            if when <= since:
                break
            if (
                rule.max_bar_seconds is None or earlier.bar_seconds <= rule.max_bar_seconds
            ) and earlier.key(rule.scope) == key:
                total += self._weight(rule, earlier)
        return total > rule.limit

    @staticmethod
    def _weight(rule: PacingRule, request: PacedRequest) -> int:
        return rule.bid_ask_weight if request.what_to_show == "BID_ASK" else 1

    def opened(self) -> None:
        self.open_count += 1
        self.max_open_seen = max(self.max_open_seen, self.open_count)

    def closed(self) -> None:
        self.open_count = max(0, self.open_count - 1)
