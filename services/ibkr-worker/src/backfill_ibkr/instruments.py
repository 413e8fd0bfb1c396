"""From a job's symbol and options to one qualified IB contract, or IB's reason why not."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from backfill_contracts import CollectBars, IbkrOptions, Outcome, SecType
from backfill_ibkr.library import IbLibrary
from backfill_worker import SourceError


@dataclass(frozen=True, slots=True)
class Instrument:
    contract: Any  # the library's qualified Contract
    con_id: int
    name: str  # what bars are stored under: the symbol, or a future's local symbol
    time_zone: str | None
    exchange: str


def parse_job_options(job: CollectBars) -> IbkrOptions:
    try:
        return IbkrOptions.model_validate(job.options)
    except ValueError as error:
        raise SourceError(Outcome.INVALID_REQUEST, f"invalid ibkr options: {error}") from error


def requested_contract(library: IbLibrary, symbol: str, options: IbkrOptions) -> Any:
    fields: dict[str, Any] = {
        "symbol": symbol,
        "secType": options.sec_type.value,
        "exchange": options.routing_exchange,
        "currency": options.currency,
    }
    if options.sec_type is SecType.CASH and "." in symbol:  # EUR.USD: base and quote
        base, quote = symbol.split(".", 1)
        fields.update(symbol=base, currency=quote)
    if options.primary_exchange:
        fields["primaryExchange"] = options.primary_exchange
    if options.expiry:
        fields["lastTradeDateOrContractMonth"] = options.expiry
    return library.contract(**fields)


def choose(symbol: str, options: IbkrOptions, details: list[Any]) -> Instrument:
    """The one contract IB matched; none or several is an invalid symbol, said in IB's terms."""
    if not details:
        raise SourceError(
            Outcome.INVALID_SYMBOL,
            f"IB has no {options.sec_type.value} contract {symbol!r} on "
            f"{options.routing_exchange} in {options.currency}",
        )
    if len(details) > 1:
        choices = sorted({_describe(d.contract) for d in details})
        hint = "expiry" if options.sec_type is SecType.FUT else "primary_exchange"
        raise SourceError(
            Outcome.INVALID_SYMBOL,
            f"{symbol!r} is ambiguous at IB: {len(details)} contracts match "
            f"({'; '.join(choices[:10])}); set `{hint}` to pick one",
        )
    found = details[0]
    contract = found.contract
    name = symbol
    if options.sec_type is SecType.FUT:
        name = contract.localSymbol or f"{symbol}-{contract.lastTradeDateOrContractMonth}"
    elif options.sec_type is SecType.CASH:
        name = contract.localSymbol or f"{contract.symbol}.{contract.currency}"
    return Instrument(
        contract=contract,
        con_id=int(contract.conId),
        name=name,
        time_zone=found.timeZoneId or None,
        exchange=contract.exchange or options.routing_exchange,
    )


def _describe(contract: Any) -> str:
    parts = [contract.localSymbol or contract.symbol, contract.primaryExchange or contract.exchange]
    if contract.lastTradeDateOrContractMonth:
        parts.append(f"expiry {contract.lastTradeDateOrContractMonth}")
    parts.append(f"conId {contract.conId}")
    return " ".join(p for p in parts if p)
