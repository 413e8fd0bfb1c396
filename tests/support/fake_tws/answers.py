"""The server's messages, field by field (the order the libraries' decoders unpack)."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.support.fake_tws.bars import (
    Bar,
    format_bar_time,
    format_head_timestamp,
    format_price,
    format_window_time,
)
from tests.support.fake_tws.market import FakeContract
from tests.support.fake_tws.messages import FARM_OK_CODES, TEXTS
from tests.support.fake_tws.protocol import Out, error_fields
from tests.support.fake_tws.sessions import NEW_YORK, hours_text

Message = list[object]

#: The paper account every client manages.
ACCOUNT = "DU1234567"
#: A few account values: enough for the libraries' account caches, nothing that matters.
ACCOUNT_VALUES = (
    ("AccountType", "INDIVIDUAL", ""),
    ("NetLiquidation", "1000000.00", "USD"),
    ("TotalCashValue", "1000000.00", "USD"),
    ("BuyingPower", "4000000.00", "USD"),
)

_ORDER_TYPES = "ACTIVETIM,AD,ADJUST,ALERT,ALLOC,AVGCOST,BASKET,DAY,GTC,LMT,MKT,STP"


def error(req_id: int, code: int, text: str | None = None) -> Message:
    return error_fields(req_id, code, TEXTS.get(code, "") if text is None else text)


def connection_time(now: datetime) -> str:
    """The handshake's second field, as TWS sends it ("20250110 14:03:05 UTC")."""
    return f"{now.astimezone(UTC):%Y%m%d %H:%M:%S} UTC"


def contract_details(req_id: int, contract: FakeContract, today: datetime) -> Message:
    """contractDetails for server versions 164+ (no version field, size rules at the end)."""
    first_day = today.astimezone(NEW_YORK).date()
    sec_type = contract.sec_type
    is_future = sec_type == "FUT"
    stock_type = contract.stock_type or ("COMMON" if sec_type == "STK" else "")
    min_tick = format_price(contract.min_tick)
    return [
        Out.CONTRACT_DATA,
        req_id,
        contract.symbol,
        sec_type,
        contract.last_trade_date,
        "0",  # strike
        "",  # right
        contract.exchange,
        contract.currency,
        contract.effective_local_symbol,
        contract.effective_trading_class,  # marketName
        contract.effective_trading_class,
        contract.con_id,
        min_tick,
        contract.multiplier,
        _ORDER_TYPES,
        ",".join(e for e in (contract.exchange, contract.primary_exchange) if e),
        1,  # priceMagnifier
        0,  # underConId
        contract.long_name.encode("unicode-escape").decode(),  # the decoders unescape it
        contract.primary_exchange,
        contract.last_trade_date[:6] if is_future else "",  # contractMonth
        "",  # industry
        "",  # category
        "",  # subcategory
        contract.time_zone,
        hours_text(sec_type, False, first_day, 7, contract.time_zone),
        hours_text(sec_type, True, first_day, 7, contract.time_zone),
        "",  # evRule
        "",  # evMultiplier
        0,  # secIdList count
        1,  # aggGroup
        contract.symbol if is_future else "",  # underSymbol
        "IND" if is_future else "",  # underSecType
        "26",  # marketRuleIds
        contract.last_trade_date if is_future else "",  # realExpirationDate
        stock_type,
        "1",  # minSize
        "1",  # sizeIncrement
        "100" if sec_type == "STK" else "1",  # suggestedSizeIncrement
    ]


def historical_header(
    req_id: int, contract: FakeContract, count: int, window: tuple[datetime, datetime]
) -> Message:
    """historicalData below server version 196: this header, then the bars' fields, in one
    message (the end of the data is implied)."""
    zone = contract.time_zone
    return [
        Out.HISTORICAL_DATA,
        req_id,
        format_window_time(window[0], zone),
        format_window_time(window[1], zone),
        count,
    ]


def bar_fields(bar: Bar, format_date: int, zone: str) -> Message:
    return [
        format_bar_time(bar, format_date, zone),
        format_price(bar.open),
        format_price(bar.high),
        format_price(bar.low),
        format_price(bar.close),
        bar.volume,
        format_price(bar.wap),
        bar.count,
    ]


def head_timestamp(req_id: int, when: datetime, format_date: int) -> Message:
    return [Out.HEAD_TIMESTAMP, req_id, format_head_timestamp(when, format_date)]


def account_updates(account: str, now: datetime) -> list[Message]:
    """reqAccountUpdates(subscribe): values, the update time, then accountDownloadEnd."""
    messages: list[Message] = [
        [Out.ACCT_VALUE, 2, key, value, currency, account]
        for key, value, currency in ACCOUNT_VALUES
    ]
    messages.append([Out.ACCT_UPDATE_TIME, 1, f"{now.astimezone(NEW_YORK):%H:%M}"])
    messages.append([Out.ACCT_DOWNLOAD_END, 1, account])
    return messages


def account_updates_multi(req_id: int, account: str, model_code: str) -> list[Message]:
    messages: list[Message] = [
        [Out.ACCOUNT_UPDATE_MULTI, 1, req_id, account, model_code, key, value, currency]
        for key, value, currency in ACCOUNT_VALUES
    ]
    messages.append([Out.ACCOUNT_UPDATE_MULTI_END, 1, req_id])
    return messages


def account_summary(req_id: int, account: str) -> list[Message]:
    messages: list[Message] = [
        [Out.ACCOUNT_SUMMARY, 1, req_id, account, key, value, currency]
        for key, value, currency in ACCOUNT_VALUES
    ]
    messages.append([Out.ACCOUNT_SUMMARY_END, 1, req_id])
    return messages


def current_time(now: datetime) -> Message:
    return [Out.CURRENT_TIME, 1, int(now.timestamp())]


def startup(account: str, next_order_id: int) -> list[Message]:
    """After startApi: managedAccounts, nextValidId, then the farm-status notices."""
    return [
        [Out.MANAGED_ACCTS, 1, account],
        [Out.NEXT_VALID_ID, 1, next_order_id],
        *(error(-1, code) for code in FARM_OK_CODES),
    ]
