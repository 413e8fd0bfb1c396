"""Contract details, head timestamps and historical bars through the real clients."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.fake_tws_tests.conftest import Client, wait_until
from tests.support.fake_tws import (
    NO_DATA,
    NO_PERMISSION,
    PACING,
    QUERY_CANCELLED,
    TOO_LONG,
    FakeContract,
    FakeGateway,
)

NEW_YORK = ZoneInfo("America/New_York")
#: Friday 10 January 2025, at the close: every default contract trades that week.
FRIDAY_CLOSE = "20250110 16:00:00 US/Eastern"


def aapl(lib: Any) -> Any:
    return lib.Stock("AAPL", "SMART", "USD")


async def history(
    client: Client,
    contract: Any,
    *,
    end: Any = FRIDAY_CLOSE,
    duration: str = "1 D",
    bar_size: str = "5 mins",
    what: str = "TRADES",
    use_rth: bool = True,
    format_date: int = 2,
    timeout: float = 5,
) -> list[Any]:
    bars = await client.ib.reqHistoricalDataAsync(
        contract, end, duration, bar_size, what, use_rth, formatDate=format_date, timeout=timeout
    )
    return list(bars)


def assert_sane(bars: list[Any]) -> None:
    for bar in bars:
        assert bar.high >= max(bar.open, bar.close)
        assert bar.low <= min(bar.open, bar.close)
        assert bar.volume > 0
    dates = [bar.date for bar in bars]
    assert dates == sorted(dates)


# ---- contract details ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "con_id", "time_zone"),
    [
        (lambda lib: lib.Stock("AAPL", "SMART", "USD"), 265598, "US/Eastern"),
        (lambda lib: lib.Stock("SPY", "SMART", "USD"), 756733, "US/Eastern"),
        (lambda lib: lib.Stock("MSFT", "SMART", "USD", primaryExchange="NASDAQ"), 272093, None),
        (lambda lib: lib.Future("ES", "20250321", "CME"), 620730920, "US/Central"),
        (lambda lib: lib.Forex("EURUSD"), 12087792, "US/Eastern"),
        (lambda lib: lib.Index("SPX", "CBOE", "USD"), 416904, "US/Eastern"),
        (lambda lib: lib.Contract(conId=265598), 265598, "US/Eastern"),
    ],
)
async def test_contract_details_of_each_kind(
    client: Client, ib_lib: Any, make: Any, con_id: int, time_zone: str | None
) -> None:
    details = await client.ib.reqContractDetailsAsync(make(ib_lib))
    assert [d.contract.conId for d in details] == [con_id]
    if time_zone:
        assert details[0].timeZoneId == time_zone
    assert details[0].tradingHours
    assert details[0].liquidHours


async def test_details_fields(client: Client, ib_lib: Any) -> None:
    (spy,) = await client.ib.reqContractDetailsAsync(ib_lib.Stock("SPY", "SMART", "USD"))
    assert spy.stockType == "ETF"
    assert spy.contract.primaryExchange == "ARCA"
    assert spy.longName == "SPDR S&P 500 ETF TRUST"
    (es,) = await client.ib.reqContractDetailsAsync(ib_lib.Future("ES", "202503", "CME"))
    assert (es.contract.localSymbol, es.contract.multiplier) == ("ESH5", "50")
    assert es.contract.lastTradeDateOrContractMonth == "20250321"
    assert es.contractMonth == "202503"


@pytest.mark.parametrize(
    ("make", "count"),
    [
        (lambda lib: lib.Future("ES", exchange="CME"), 2),
        (lambda lib: lib.Stock("AMBI", "SMART", "USD"), 2),
        (lambda lib: lib.Stock("AMBI", "SMART", "USD", primaryExchange="NYSE"), 1),
    ],
)
async def test_ambiguous_contracts_give_several_details(
    client: Client, ib_lib: Any, make: Any, count: int
) -> None:
    assert len(await client.ib.reqContractDetailsAsync(make(ib_lib))) == count


async def test_unknown_symbol_gets_200(client: Client, ib_lib: Any) -> None:
    ib = client.ib
    assert await ib.reqContractDetailsAsync(ib_lib.Stock("NOPE", "SMART", "USD")) == []
    assert client.errors.entries[-1][1:] == (
        200,
        "No security definition has been found for the request",
    )
    ib.RaiseRequestErrors = True
    with pytest.raises(ib_lib.RequestError) as raised:
        await ib.reqContractDetailsAsync(ib_lib.Stock("NOPE", "SMART", "USD"))
    assert raised.value.code == 200


async def test_qualify_contracts(client: Client, ib_lib: Any) -> None:
    """qualifyContractsAsync fills a unique match in place; for an ambiguous or unknown one
    ib_async returns None in its slot, ib_insync leaves it out."""
    ib = client.ib
    stock = aapl(ib_lib)
    assert await ib.qualifyContractsAsync(stock) == [stock]
    assert stock.conId == 265598
    missing = [] if ib_lib.__name__ == "ib_insync" else [None]
    assert await ib.qualifyContractsAsync(ib_lib.Future("ES", exchange="CME")) == missing
    assert await ib.qualifyContractsAsync(ib_lib.Stock("NOPE", "SMART", "USD")) == missing


async def test_added_contract_is_served(client: Client, fake_tws: FakeGateway, ib_lib: Any) -> None:
    fake_tws.add_contract(
        FakeContract("TSLA", "STK", "SMART", "USD", 76792991, primary_exchange="NASDAQ")
    )
    details = await client.ib.reqContractDetailsAsync(ib_lib.Stock("TSLA", "SMART", "USD"))
    assert [d.contract.conId for d in details] == [76792991]


# ---- head timestamps -------------------------------------------------------------------


async def test_head_timestamp(client: Client, ib_lib: Any) -> None:
    ib = client.ib
    epoch = await ib.reqHeadTimeStampAsync(aapl(ib_lib), "TRADES", True, 2)
    assert epoch == datetime(1980, 12, 12, 14, 30, tzinfo=UTC)
    # formatDate 1: IB's UTC notation, parsed to a naive datetime by both libraries.
    text = await ib.reqHeadTimeStampAsync(aapl(ib_lib), "TRADES", True, 1)
    assert text == datetime(1980, 12, 12, 14, 30)  # noqa: DTZ001 - what the library returns


async def test_head_timestamp_of_unknown_contract(client: Client, ib_lib: Any) -> None:
    client.ib.RaiseRequestErrors = True
    with pytest.raises(ib_lib.RequestError) as raised:
        await client.ib.reqHeadTimeStampAsync(ib_lib.Stock("NOPE"), "TRADES", True, 2)
    assert raised.value.code == 200


# ---- historical bars -------------------------------------------------------------------


async def test_intraday_bars_fill_the_window_in_session(client: Client, ib_lib: Any) -> None:
    bars = await history(client, aapl(ib_lib))
    assert len(bars) == 78  # 09:30-16:00 in 5-minute bars
    end = datetime(2025, 1, 10, 16, tzinfo=NEW_YORK)
    for bar in bars:
        assert bar.date.tzinfo is not None  # formatDate 2: epoch seconds -> aware UTC
        assert end - timedelta(days=1) <= bar.date < end
        local = bar.date.astimezone(NEW_YORK)
        assert time(9, 30) <= local.time() < time(16)
        assert local.weekday() < 5
    assert [b.date for b in bars[1:]] == [b.date + timedelta(minutes=5) for b in bars[:-1]]
    assert_sane(bars)


async def test_outside_rth_bars_span_4_to_20(client: Client, ib_lib: Any) -> None:
    bars = await history(client, aapl(ib_lib), end="20250110 20:00:00 US/Eastern", use_rth=False)
    assert len(bars) == 16 * 12
    assert bars[0].date.astimezone(NEW_YORK).time() == time(4)
    assert bars[-1].date.astimezone(NEW_YORK).time() == time(19, 55)


async def test_bars_are_deterministic(client: Client, ib_lib: Any) -> None:
    first = await history(client, aapl(ib_lib), bar_size="1 hour")
    # The same window spelled differently (the identical request would break pacing).
    second = await history(client, aapl(ib_lib), end="20250110-21:00:00", bar_size="1 hour")
    assert [(b.date, b.close) for b in first] == [(b.date, b.close) for b in second]


async def test_format_date_1_gives_times_in_the_contract_zone(client: Client, ib_lib: Any) -> None:
    bars = await history(
        client, ib_lib.Future("ES", "20250321", "CME"), bar_size="1 hour", format_date=1
    )
    assert bars[0].date.tzinfo == ZoneInfo("US/Central")
    assert_sane(bars)


async def test_daily_bars(client: Client, ib_lib: Any) -> None:
    end = datetime(2025, 1, 10, 23, 59, 59, tzinfo=UTC)
    bars = await history(client, aapl(ib_lib), end=end, duration="1 M", bar_size="1 day")
    days = [bar.date for bar in bars]
    assert all(type(day) is date and day.weekday() < 5 for day in days)
    assert days[0] == date(2024, 12, 11)
    assert days[-1] == date(2025, 1, 10)
    assert len(days) == 23  # the fake has no holidays
    assert_sane(bars)


async def test_weekly_and_monthly_bars(client: Client, ib_lib: Any) -> None:
    end = datetime(2025, 1, 10, 23, 59, 59, tzinfo=UTC)
    weeks = await history(client, aapl(ib_lib), end=end, duration="1 Y", bar_size="1W")
    assert 52 <= len(weeks) <= 54
    months = await history(client, aapl(ib_lib), end=end, duration="2 Y", bar_size="1M")
    assert 24 <= len(months) <= 25
    assert all(isinstance(bar.date, date) for bar in weeks + months)


async def test_futures_skip_the_daily_break_and_the_weekend(client: Client, ib_lib: Any) -> None:
    bars = await history(
        client,
        ib_lib.Future("ES", "20250321", "CME"),
        end="20250113 12:00:00 US/Eastern",
        duration="1 W",
        bar_size="1 hour",
    )
    assert bars
    for bar in bars:
        local = bar.date.astimezone(NEW_YORK)
        assert local.hour != 17
        assert local.weekday() != 5
        assert not (local.weekday() == 6 and local.hour < 18)
        assert not (local.weekday() == 4 and local.hour >= 17)


async def test_forex_midpoint(client: Client, ib_lib: Any) -> None:
    bars = await history(client, ib_lib.Forex("EURUSD"), what="MIDPOINT", bar_size="15 mins")
    assert len(bars) == 23 * 4  # 18:00 to 16:00 (the window) less the 17:00-18:00 break
    assert all(0.5 < bar.close < 2 for bar in bars)


async def test_request_is_logged_as_sent(
    client: Client, fake_tws: FakeGateway, ib_lib: Any
) -> None:
    await history(client, aapl(ib_lib))
    (record,) = fake_tws.requests
    assert (record.kind, record.client_id, record.con_id, record.symbol) == (
        "historical",
        client.client_id,
        265598,
        "AAPL",
    )
    assert (record.exchange, record.what_to_show, record.bar_size, record.duration) == (
        "SMART",
        "TRADES",
        "5 mins",
        "1 D",
    )
    assert (record.end_datetime, record.use_rth, record.format_date) == (FRIDAY_CLOSE, True, 2)


async def test_naive_end_warns_2174_and_still_answers(client: Client, ib_lib: Any) -> None:
    client.ib.RaiseRequestErrors = True
    bars = await history(client, aapl(ib_lib), end="20250110 21:00:00")  # UTC for the fake
    assert len(bars) == 78
    assert 2174 in client.errors.codes()


# ---- errors ----------------------------------------------------------------------------


async def test_weekend_window_is_no_data(client: Client, ib_lib: Any) -> None:
    sunday = "20250112 12:00:00 US/Eastern"
    assert await history(client, aapl(ib_lib), end=sunday) == []
    assert client.errors.entries[-1][1:] == (162, f"{NO_DATA} AAPL@SMART Trades")


async def test_expired_future_has_no_data(client: Client, ib_lib: Any) -> None:
    client.ib.RaiseRequestErrors = True
    with pytest.raises(ib_lib.RequestError) as raised:
        await history(
            client, ib_lib.Contract(conId=620730920, exchange="CME"), end="20250501-20:00:00"
        )
    assert raised.value.message.startswith(NO_DATA)


async def test_too_long_duration(client: Client, ib_lib: Any) -> None:
    client.ib.RaiseRequestErrors = True
    with pytest.raises(ib_lib.RequestError) as raised:
        await history(client, aapl(ib_lib), duration="3600 S", bar_size="1 secs")
    assert (raised.value.code, raised.value.message) == (162, TOO_LONG)
    # Daily bars may span any number of years.
    assert await history(client, aapl(ib_lib), duration="30 Y", bar_size="1 day")


@pytest.mark.parametrize("kind", [PACING, NO_DATA, TOO_LONG, NO_PERMISSION, QUERY_CANCELLED])
async def test_injected_162(client: Client, fake_tws: FakeGateway, ib_lib: Any, kind: str) -> None:
    fake_tws.inject(162, text=kind, times=2)
    # By default the request just ends empty (and the error goes to errorEvent) ...
    assert await history(client, aapl(ib_lib)) == []
    assert client.errors.entries[-1][1] == 162
    assert client.errors.entries[-1][2].startswith(kind)
    # ... with RaiseRequestErrors it raises.
    client.ib.RaiseRequestErrors = True
    with pytest.raises(ib_lib.RequestError) as raised:
        await history(client, aapl(ib_lib))
    assert raised.value.code == 162
    assert raised.value.message.startswith(kind)
    assert len(await history(client, aapl(ib_lib), bar_size="1 hour")) == 7  # used up


@pytest.mark.parametrize("code", [200, 354, 366, 10197])
async def test_injected_request_errors(
    client: Client, fake_tws: FakeGateway, ib_lib: Any, code: int
) -> None:
    fake_tws.inject(code)
    client.ib.RaiseRequestErrors = True
    with pytest.raises(ib_lib.RequestError) as raised:
        await history(client, aapl(ib_lib))
    assert raised.value.code == code


async def test_injection_matches_kind_and_symbol(
    client: Client, fake_tws: FakeGateway, ib_lib: Any
) -> None:
    fake_tws.inject(200, kind="details", symbol="MSFT")
    assert await client.ib.reqContractDetailsAsync(aapl(ib_lib))
    assert len(await history(client, ib_lib.Stock("MSFT", "SMART", "USD"))) == 78
    assert await client.ib.reqContractDetailsAsync(ib_lib.Stock("MSFT", "SMART", "USD")) == []


async def test_321_leaves_the_request_pending_in_ib_async_only(
    client: Client, fake_tws: FakeGateway, ib_lib: Any
) -> None:
    """ib_async counts 321 as a warning: the request waits for its own timeout. ib_insync
    counts it as an error and ends the request."""
    client.ib.RaiseRequestErrors = True
    fake_tws.inject(321)
    request = history(client, aapl(ib_lib), timeout=0)
    if ib_lib.__name__ == "ib_async":
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(request, 0.5)
    else:
        with pytest.raises(ib_lib.RequestError) as raised:
            await asyncio.wait_for(request, 0.5)
        assert raised.value.code == 321
    assert client.errors.entries[-1][1] == 321


@pytest.mark.parametrize(
    ("bar_size", "what", "cause"),
    [
        ("7 mins", "TRADES", "bar size setting is invalid"),
        ("1 min", "HISTORICAL_VOLATILITY", "not served by the fake"),
        ("1 min", "LAST", "Invalid whatToShow"),
        ("1 min", "TRADES", "duration format is invalid"),
    ],
)
async def test_invalid_requests_are_321(
    client: Client, ib_lib: Any, bar_size: str, what: str, cause: str
) -> None:
    duration = "1 D" if "duration" not in cause else "1 day"
    client.ib.RaiseRequestErrors = True
    request = history(
        client, aapl(ib_lib), duration=duration, bar_size=bar_size, what=what, timeout=0
    )
    with pytest.raises((TimeoutError, ib_lib.RequestError)):
        await asyncio.wait_for(request, 0.5)
    _req_id, code, text = client.errors.entries[-1]
    assert code == 321
    assert text.startswith("Error validating request.-'bP' : cause - ")
    assert cause in text


async def test_ambiguous_historical_request_is_200(client: Client, ib_lib: Any) -> None:
    assert await history(client, ib_lib.Future("ES", exchange="CME")) == []
    assert client.errors.entries[-1][1:] == (
        200,
        "The contract description specified for ES is ambiguous.",
    )


async def test_hang_times_out_and_the_cancel_is_answered(
    client: Client, fake_tws: FakeGateway, ib_lib: Any
) -> None:
    """On its own timeout a library cancels (25) and returns the empty list, like no data;
    IB confirms the cancel with 162 "query cancelled"."""
    fake_tws.hang()
    assert await history(client, aapl(ib_lib), timeout=0.3) == []
    await wait_until(lambda: 162 in client.errors.codes(), what="the cancel's 162")
    assert client.errors.entries[-1][2].startswith(QUERY_CANCELLED)
    assert fake_tws.open_requests == 0
    assert fake_tws.max_open_seen == 1


@pytest.mark.parametrize("kind", ["details", "head"])
async def test_hang_of_details_and_head_needs_a_timeout_of_ones_own(
    client: Client, fake_tws: FakeGateway, ib_lib: Any, kind: str
) -> None:
    fake_tws.hang(kind=kind)
    call = (
        client.ib.reqContractDetailsAsync(aapl(ib_lib))
        if kind == "details"
        else client.ib.reqHeadTimeStampAsync(aapl(ib_lib), "TRADES", True, 2)
    )
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(call, 0.3)


async def test_cancel_of_an_unknown_request_is_366(client: Client) -> None:
    client.ib.client.cancelHistoricalData(4242)
    await wait_until(lambda: 366 in client.errors.codes(), what="366")
    assert client.errors.entries[-1] == (
        4242,
        366,
        "No historical data query found for ticker id:4242",
    )


async def test_latency_keeps_requests_open(
    client: Client, fake_tws: FakeGateway, ib_lib: Any
) -> None:
    fake_tws.latency_s = 0.3
    loop = asyncio.get_running_loop()
    started = loop.time()
    results = await asyncio.gather(
        *(history(client, ib_lib.Stock(s, "SMART", "USD")) for s in ("AAPL", "SPY", "MSFT"))
    )
    assert loop.time() - started >= 0.3
    assert [len(bars) for bars in results] == [78, 78, 78]
    assert fake_tws.max_open_seen == 3


async def test_lost_connectivity_holds_requests_until_restored(
    client: Client, fake_tws: FakeGateway, ib_lib: Any
) -> None:
    fake_tws.connectivity_lost()
    request = asyncio.ensure_future(history(client, aapl(ib_lib)))
    await wait_until(lambda: len(fake_tws.requests) == 1, what="the request")
    done, _ = await asyncio.wait({request}, timeout=0.2)
    assert not done
    fake_tws.connectivity_restored(data_lost=False)
    assert len(await request) == 78


async def test_data_lost_drops_pending_requests(
    client: Client, fake_tws: FakeGateway, ib_lib: Any
) -> None:
    fake_tws.connectivity_lost()
    request = asyncio.ensure_future(history(client, aapl(ib_lib), timeout=0.5))
    await wait_until(lambda: len(fake_tws.requests) == 1, what="the request")
    fake_tws.connectivity_restored(data_lost=True)
    assert await request == []  # never answered: the library's own timeout ends it
    await wait_until(lambda: 366 in client.errors.codes(), what="the cancel's 366")
