"""What the gateway records for tests to assert on, and the failures they can script."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["historical", "head", "details"]
KINDS: tuple[Kind, ...] = ("historical", "head", "details")


@dataclass(frozen=True)
class RequestRecord:
    """One historical, head-timestamp or contract-details request, as received."""

    #: time.monotonic() when the gateway read it.
    time: float
    client_id: int
    kind: Kind
    req_id: int
    #: The contract's conId once resolved; the request's own conId (often 0) otherwise.
    con_id: int
    symbol: str
    sec_type: str
    exchange: str
    what_to_show: str
    bar_size: str
    duration: str
    #: endDateTime exactly as sent ("" for head and details requests).
    end_datetime: str
    use_rth: bool
    format_date: int


@dataclass(frozen=True)
class Violation:
    """A historical request that broke a pacing rule (it was answered with 162 pacing)."""

    rule: str
    time: float
    request: RequestRecord


@dataclass
class Injection:
    """The next `remaining` matching requests get error `code`, or no answer if code is None."""

    kind: Kind
    symbol: str | None
    remaining: int
    code: int | None
    text: str | None = None

    def matches(self, kind: Kind, symbol: str) -> bool:
        return (
            self.remaining > 0
            and self.kind == kind
            and (self.symbol is None or self.symbol.upper() == symbol.upper())
        )
