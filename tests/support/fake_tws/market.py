"""The fake's instruments: `FakeContract`, the default set, and how a request's contract
fields pick one (or several, which makes the request ambiguous)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from tests.support.fake_tws.protocol import ContractQuery


@dataclass(frozen=True)
class FakeContract:
    symbol: str
    sec_type: str  # "STK", "FUT", "CASH", "IND"
    exchange: str
    currency: str
    con_id: int
    primary_exchange: str = ""
    local_symbol: str = ""
    #: Futures expiry, YYYYMMDD; no bars are served after that day.
    last_trade_date: str = ""
    multiplier: str = ""
    trading_class: str = ""
    #: contractDetails.timeZoneId; also the zone of formatDate=1 bar times.
    time_zone: str = "US/Eastern"
    #: The earliest bar (reqHeadTimeStamp's answer); no bars are served before it.
    head_timestamp: datetime = datetime(2000, 1, 3, 14, 30, tzinfo=UTC)
    long_name: str = ""
    # Extensions beyond the agreed fields; the defaults suit a US stock.
    #: contractDetails.stockType ("COMMON", "ETF"); empty: "COMMON" for STK.
    stock_type: str = ""
    #: Where the deterministic price walk is centred.
    base_price: float = 100.0
    min_tick: float = 0.01

    @property
    def effective_local_symbol(self) -> str:
        return self.local_symbol or self.symbol

    @property
    def effective_trading_class(self) -> str:
        return self.trading_class or self.symbol


def _utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def default_contracts() -> list[FakeContract]:
    """The contracts every test starts with (FakeGateway.reset() restores them)."""
    return [
        FakeContract(
            "AAPL", "STK", "SMART", "USD", 265598, primary_exchange="NASDAQ",
            trading_class="NMS", head_timestamp=_utc(1980, 12, 12, 14, 30),
            long_name="APPLE INC", base_price=190.0,
        ),
        FakeContract(
            "SPY", "STK", "SMART", "USD", 756733, primary_exchange="ARCA",
            head_timestamp=_utc(1993, 1, 29, 14, 30), long_name="SPDR S&P 500 ETF TRUST",
            stock_type="ETF", base_price=500.0,
        ),
        FakeContract(
            "MSFT", "STK", "SMART", "USD", 272093, primary_exchange="NASDAQ",
            trading_class="NMS", head_timestamp=_utc(1986, 3, 13, 14, 30),
            long_name="MICROSOFT CORP", base_price=420.0,
        ),
        FakeContract(
            "ES", "FUT", "CME", "USD", 620730920, local_symbol="ESH5",
            last_trade_date="20250321", multiplier="50", trading_class="ES",
            time_zone="US/Central", head_timestamp=_utc(2023, 12, 15, 23),
            long_name="E-mini S&P 500", base_price=5800.0, min_tick=0.25,
        ),
        FakeContract(
            "ES", "FUT", "CME", "USD", 637533641, local_symbol="ESM5",
            last_trade_date="20250620", multiplier="50", trading_class="ES",
            time_zone="US/Central", head_timestamp=_utc(2024, 3, 15, 22),
            long_name="E-mini S&P 500", base_price=5850.0, min_tick=0.25,
        ),
        FakeContract(
            "EUR", "CASH", "IDEALPRO", "USD", 12087792, local_symbol="EUR.USD",
            trading_class="EUR.USD", head_timestamp=_utc(2005, 3, 1, 0, 15),
            long_name="European Monetary Union Euro", base_price=1.08, min_tick=0.00005,
        ),
        FakeContract(
            "SPX", "IND", "CBOE", "USD", 416904, head_timestamp=_utc(1990, 1, 2, 14, 30),
            long_name="S&P 500 Stock Index", base_price=5000.0,
        ),
        FakeContract(
            "AMBI", "STK", "SMART", "USD", 900001, primary_exchange="NYSE",
            head_timestamp=_utc(2010, 1, 4, 14, 30), long_name="AMBIGUOUS CORP (NYSE)",
        ),
        FakeContract(
            "AMBI", "STK", "SMART", "USD", 900002, primary_exchange="NASDAQ",
            head_timestamp=_utc(2012, 1, 3, 14, 30), long_name="AMBIGUOUS CORP (NASDAQ)",
        ),
    ]  # fmt: skip


def matches(contract: FakeContract, query: ContractQuery) -> bool:
    """IB's lookup as the fake models it: by conId if given, else by the fields given.

    An exchange of "" or "SMART" matches any; another exchange matches the contract's
    exchange or its primary exchange. The expiry matches as a prefix ("202503" is March 2025).
    """
    if query.con_id:
        return contract.con_id == query.con_id
    if not query.symbol and not query.local_symbol:
        return False
    checks = [
        (query.symbol, contract.symbol),
        (query.sec_type, contract.sec_type),
        (query.currency, contract.currency),
        (query.primary_exchange, contract.primary_exchange),
        (query.local_symbol, contract.effective_local_symbol),
        (query.trading_class, contract.effective_trading_class),
    ]
    if any(wanted and wanted.upper() != have.upper() for wanted, have in checks):
        return False
    exchange = query.exchange.upper()
    if exchange not in ("", "SMART") and exchange not in (
        contract.exchange.upper(),
        contract.primary_exchange.upper(),
    ):
        return False
    if query.multiplier and contract.multiplier and query.multiplier != contract.multiplier:
        return False
    return contract.last_trade_date.startswith(query.last_trade_date)


def resolve(contracts: list[FakeContract], query: ContractQuery) -> list[FakeContract]:
    return [contract for contract in contracts if matches(contract, query)]
