"""The sources Backfill can collect from, and the options each one accepts.

A source is known here once its worker exists; the API refuses any other name. Options are checked
against the source's model, so an unknown or misspelled key is an error, never silently ignored.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class SourceOptions(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SimOptions(SourceOptions):
    """The synthetic source: deterministic bars, with latency and faults on request."""

    latency_ms: int = Field(default=0, ge=0, le=600_000, description="Delay before each chunk.")
    fail_every: int = Field(
        default=0,
        ge=0,
        description="Every Nth chunk fails once with a transient error (0: never).",
    )


class YahooOptions(SourceOptions):
    """Yahoo Finance: bars are stored raw, with the adjusted close beside them."""

    adjusted: bool = Field(
        default=False,
        description="Store split- and dividend-adjusted open, high, low and close "
        "(price type `adjusted`) instead of the raw prices (price type `trades`).",
    )


class SecType(StrEnum):
    """The IB security types Backfill collects: stocks and ETFs, futures, FX, indices."""

    STK = "STK"
    FUT = "FUT"
    CASH = "CASH"
    IND = "IND"


class WhatToShow(StrEnum):
    """IB's price types; the lower-case value is the `price_type` bars are stored under."""

    TRADES = "TRADES"
    MIDPOINT = "MIDPOINT"
    BID = "BID"
    ASK = "ASK"
    BID_ASK = "BID_ASK"
    ADJUSTED_LAST = "ADJUSTED_LAST"


# Where a security type trades when the job names no exchange. Futures and indices have no
# such default: CME or CBOT, CBOE or NASDAQ are different contracts, so the job must say.
DEFAULT_EXCHANGE = {SecType.STK: "SMART", SecType.CASH: "IDEALPRO"}
_EXCHANGE = re.compile(r"[A-Z0-9._-]{1,20}")
_EXPIRY = re.compile(r"\d{6}(\d{2})?")


class IbkrOptions(SourceOptions):
    """Interactive Brokers: which contract, which prices, which hours."""

    sec_type: SecType = Field(
        default=SecType.STK, description="STK (stocks, ETFs), FUT, CASH, IND."
    )
    exchange: str | None = Field(
        default=None,
        description="Routing exchange (default SMART for STK, IDEALPRO for CASH; "
        "required for FUT and IND, e.g. CME, CBOE).",
    )
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    primary_exchange: str | None = Field(
        default=None, description="Tells apart stocks of the same symbol (e.g. NASDAQ, ARCA)."
    )
    expiry: str | None = Field(
        default=None, description="Futures only: contract month YYYYMM or last trade date YYYYMMDD."
    )
    what_to_show: WhatToShow = WhatToShow.TRADES
    use_rth: bool = Field(default=True, description="Regular trading hours only.")

    @field_validator("exchange", "primary_exchange")
    @classmethod
    def _exchange_shape(cls, value: str | None) -> str | None:
        if value is not None and not _EXCHANGE.fullmatch(value):
            raise ValueError("an exchange is 1 to 20 characters of A-Z 0-9 . _ - (e.g. SMART)")
        return value

    @field_validator("expiry")
    @classmethod
    def _expiry_shape(cls, value: str | None) -> str | None:
        if value is not None and not _EXPIRY.fullmatch(value):
            raise ValueError("expiry is YYYYMM (contract month) or YYYYMMDD (last trade date)")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.sec_type is SecType.FUT and self.expiry is None:
            raise ValueError("a futures job needs `expiry` (YYYYMM or YYYYMMDD)")
        if self.sec_type is not SecType.FUT and self.expiry is not None:
            raise ValueError(f"`expiry` applies to futures only, not {self.sec_type.value}")
        if self.exchange is None and self.sec_type not in DEFAULT_EXCHANGE:
            raise ValueError(f"a {self.sec_type.value} job needs `exchange` (e.g. CME, CBOE)")
        if self.sec_type is SecType.CASH and self.what_to_show is WhatToShow.TRADES:
            raise ValueError("IB has no TRADES for FX: use MIDPOINT, BID, ASK or BID_ASK")
        return self

    @property
    def routing_exchange(self) -> str:
        return self.exchange or DEFAULT_EXCHANGE[self.sec_type]

    @property
    def price_type(self) -> str:
        return self.what_to_show.value.lower()


OPTIONS_BY_SOURCE: dict[str, type[SourceOptions]] = {
    "sim": SimOptions,
    "yahoo": YahooOptions,
    "ibkr": IbkrOptions,
}


# Sources whose prices come split-adjusted already: Yahoo's close "adjusted for splits" (its
# adjusted close takes out dividends as well), and IB's historical TRADES ("adjusted for splits,
# but not dividends"). Adjusting their bars for splits again would divide twice.
SPLITS_IN_PRICES: frozenset[str] = frozenset({"yahoo", "ibkr"})
# Price types that are adjusted by the source already (Yahoo's `adjusted`, IB's ADJUSTED_LAST).
ADJUSTED_PRICE_TYPES: frozenset[str] = frozenset({"adjusted", "adjusted_last"})


class UnknownSourceError(ValueError):
    """Raised when a job names a source that has no worker in this version."""


def known_sources() -> list[str]:
    return sorted(OPTIONS_BY_SOURCE)


def parse_options(source: str, options: dict[str, Any]) -> SourceOptions:
    """Validate a job's options for its source; raises UnknownSourceError or ValidationError."""
    model = OPTIONS_BY_SOURCE.get(source)
    if model is None:
        raise UnknownSourceError(f"unknown source {source!r}; known sources: {known_sources()}")
    return model.model_validate(options)
