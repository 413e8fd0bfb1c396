"""The fake's own rules, without a client: sessions, bars, durations, end times, pacing,
contract matching, framing."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.support.fake_tws import DEFAULT_RULES, PacingRule, default_contracts
from tests.support.fake_tws.bars import (
    BAR_SIZES,
    Duration,
    bars_for,
    parse_duration,
    parse_end,
    too_long,
)
from tests.support.fake_tws.market import FakeContract, resolve
from tests.support.fake_tws.pacing import PacedRequest, PacingMonitor
from tests.support.fake_tws.protocol import (
    ContractQuery,
    FrameProtocol,
    Incoming,
    encode,
    frame,
    negotiate,
)
from tests.support.fake_tws.sessions import hours_text, sessions_between

NEW_YORK = ZoneInfo("America/New_York")
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def contract(symbol: str, sec_type: str = "STK") -> FakeContract:
    return next(c for c in default_contracts() if (c.symbol, c.sec_type) == (symbol, sec_type))


def query(**fields: object) -> ContractQuery:
    values: dict[str, object] = dict.fromkeys(ContractQuery.__dataclass_fields__, "")
    values["con_id"] = 0
    values.update(fields)
    return ContractQuery(**values)  # type: ignore[arg-type]


# ---- sessions and bars -----------------------------------------------------------------


def test_stock_sessions_are_weekdays_in_new_york_hours() -> None:
    start = datetime(2025, 1, 4, tzinfo=UTC)  # a Saturday
    sessions = sessions_between("STK", True, start, start + timedelta(days=7))
    assert [s.trading_day for s in sessions] == [date(2025, 1, d) for d in (6, 7, 8, 9, 10)]
    assert sessions[0].start.astimezone(NEW_YORK).strftime("%H:%M") == "09:30"
    assert sessions[0].end.astimezone(NEW_YORK).strftime("%H:%M") == "16:00"


def test_futures_session_opens_the_evening_before() -> None:
    monday = datetime(2025, 1, 6, 12, tzinfo=UTC)
    (session,) = sessions_between("FUT", False, monday, monday + timedelta(hours=1))
    assert session.trading_day == date(2025, 1, 6)
    assert session.start.astimezone(NEW_YORK) == datetime(2025, 1, 5, 18, tzinfo=NEW_YORK)
    assert session.end.astimezone(NEW_YORK) == datetime(2025, 1, 6, 17, tzinfo=NEW_YORK)


def test_trading_hours_text() -> None:
    text = hours_text("STK", True, date(2025, 1, 3), 2, "US/Eastern")
    assert text == "20250103:0930-20250103:1600;20250104:CLOSED"
    assert hours_text("FUT", False, date(2025, 1, 6), 1, "US/Central") == (
        "20250105:1700-20250106:1600"
    )


@pytest.mark.parametrize("size", ["1 hour", "4 hours", "8 hours"])
def test_long_intraday_bars_start_at_the_open(size: str) -> None:
    end = datetime(2025, 1, 10, 21, tzinfo=UTC)
    bars = bars_for(
        contract("AAPL"), BAR_SIZES[size], "TRADES", True, (end - timedelta(days=1), end), NOW
    )
    assert bars[0].start.astimezone(NEW_YORK).strftime("%H:%M") == "09:30"


@pytest.mark.parametrize("what", ["TRADES", "MIDPOINT", "BID", "ASK", "BID_ASK", "ADJUSTED_LAST"])
def test_bars_are_consistent(what: str) -> None:
    end = datetime(2025, 1, 10, 21, tzinfo=UTC)
    for name in ("AAPL", "EUR", "SPX"):
        sec_type = {"EUR": "CASH", "SPX": "IND"}.get(name, "STK")
        window = (end - timedelta(days=3), end)
        for bar in bars_for(
            contract(name, sec_type), BAR_SIZES["30 mins"], what, True, window, NOW
        ):
            assert bar.low <= min(bar.open, bar.close) <= max(bar.open, bar.close) <= bar.high
            assert bar.volume > 0
            assert bar.count > 0


def test_bars_stop_at_now_and_start_at_the_head_timestamp() -> None:
    aapl = contract("AAPL")
    now = datetime(2025, 1, 10, 15, tzinfo=UTC)
    window = (now - timedelta(days=1), now + timedelta(days=1))
    bars = bars_for(aapl, BAR_SIZES["1 min"], "TRADES", True, window, now)
    assert bars[-1].start < now
    early = datetime(1980, 12, 12, 22, tzinfo=UTC)
    window = (early - timedelta(days=7), early)
    assert bars_for(aapl, BAR_SIZES["1 day"], "TRADES", True, window, NOW)[0].day == date(
        1980, 12, 12
    )


# ---- request parameters ----------------------------------------------------------------


def test_legal_bar_sizes_are_exactly_ibs() -> None:
    assert list(BAR_SIZES) == [
        "1 secs", "5 secs", "10 secs", "15 secs", "30 secs", "1 min", "2 mins", "3 mins",
        "5 mins", "10 mins", "15 mins", "20 mins", "30 mins", "1 hour", "2 hours", "3 hours",
        "4 hours", "8 hours", "1 day", "1W", "1M",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("size", "fits", "exceeds"),
    [
        ("1 secs", "1800 S", "1801 S"),
        ("5 secs", "3600 S", "2 D"),
        ("30 secs", "28800 S", "1 D"),
        ("1 min", "1 D", "2 D"),
        ("2 mins", "2 D", "3 D"),
        ("5 mins", "1 W", "8 D"),
        ("1 hour", "1 M", "2 M"),
        ("8 hours", "4 W", "1 Y"),
        ("1 day", "30 Y", None),
    ],
)
def test_duration_limits(size: str, fits: str, exceeds: str | None) -> None:
    def parsed(text: str) -> Duration:
        duration = parse_duration(text)
        assert duration is not None
        return duration

    assert not too_long(BAR_SIZES[size], parsed(fits))
    if exceeds:
        assert too_long(BAR_SIZES[size], parsed(exceeds))


@pytest.mark.parametrize("text", ["", "1D", "0 D", "1 X", "D 1", "-1 D"])
def test_malformed_durations(text: str) -> None:
    assert parse_duration(text) is None


def test_calendar_durations() -> None:
    end = datetime(2024, 3, 31, 12, tzinfo=UTC)
    assert Duration(1, "M").before(end) == datetime(2024, 2, 29, 12, tzinfo=UTC)
    assert Duration(1, "Y").before(datetime(2024, 2, 29, tzinfo=UTC)) == datetime(
        2023, 2, 28, tzinfo=UTC
    )
    assert Duration(2, "W").before(end) == end - timedelta(days=14)


@pytest.mark.parametrize(
    ("text", "when", "naive"),
    [
        ("20250110-21:00:00", datetime(2025, 1, 10, 21, tzinfo=UTC), False),
        ("20250110 16:00:00 US/Eastern", datetime(2025, 1, 10, 21, tzinfo=UTC), False),
        ("20250110 21:00:00 UTC", datetime(2025, 1, 10, 21, tzinfo=UTC), False),
        ("20250110 21:00:00", datetime(2025, 1, 10, 21, tzinfo=UTC), True),
        ("", NOW, False),
    ],
)
def test_end_times(text: str, when: datetime, naive: bool) -> None:
    end = parse_end(text, NOW)
    assert end is not None
    assert (end.when, end.naive) == (when, naive)


@pytest.mark.parametrize("text", ["2025-01-10", "20250110 25:00:00", "20250110 10:00:00 Mars/Base"])
def test_malformed_end_times(text: str) -> None:
    assert parse_end(text, NOW) is None


# ---- contracts -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "con_ids"),
    [
        ({"con_id": 265598}, [265598]),
        ({"symbol": "AAPL", "sec_type": "STK", "exchange": "SMART"}, [265598]),
        ({"symbol": "AAPL", "sec_type": "STK", "exchange": "NASDAQ"}, [265598]),
        ({"symbol": "AAPL", "sec_type": "STK", "exchange": "ARCA"}, []),
        ({"symbol": "AAPL", "sec_type": "STK", "currency": "EUR"}, []),
        ({"symbol": "ES", "sec_type": "FUT", "exchange": "CME"}, [620730920, 637533641]),
        ({"symbol": "ES", "sec_type": "FUT", "last_trade_date": "202506"}, [637533641]),
        ({"local_symbol": "ESH5", "sec_type": "FUT"}, [620730920]),
        ({"symbol": "AMBI", "sec_type": "STK"}, [900001, 900002]),
        ({"symbol": "AMBI", "sec_type": "STK", "primary_exchange": "NYSE"}, [900001]),
        ({"symbol": "EUR", "sec_type": "CASH", "currency": "USD"}, [12087792]),
        ({"sec_type": "STK"}, []),
    ],
)
def test_contract_matching(fields: dict[str, object], con_ids: list[int]) -> None:
    assert [c.con_id for c in resolve(default_contracts(), query(**fields))] == con_ids


# ---- pacing ----------------------------------------------------------------------------


def paced(
    con_id: int = 1, what: str = "TRADES", end: str = "", bar_seconds: int = 60
) -> PacedRequest:
    return PacedRequest(con_id, "SMART", what, end, "1 D", "1 min", True, bar_seconds)


def test_windows_slide_and_scale() -> None:
    monitor = PacingMonitor(DEFAULT_RULES, scale=0.1)
    assert monitor.check(paced(), 0.0) is None
    broken = monitor.check(paced(), 1.4)  # within the scaled 15 s
    assert broken is not None
    assert broken.name == "identical_within_15s"
    assert monitor.check(paced(), 2.95) is None  # 1.55 s after the last one


def test_small_bar_rule_ignores_larger_bars() -> None:
    rule = PacingRule("two", "all", limit=2, window_s=10, max_bar_seconds=30, bid_ask_weight=2)
    monitor = PacingMonitor([rule], scale=1.0)
    assert monitor.check(paced(bar_seconds=60), 0) is None
    assert monitor.check(paced(bar_seconds=60), 0) is None
    assert monitor.check(paced(bar_seconds=60), 0) is None
    assert monitor.check(paced(what="BID_ASK", bar_seconds=5), 0) is None
    assert monitor.check(paced(bar_seconds=5), 0) is rule


def test_open_rule() -> None:
    monitor = PacingMonitor([PacingRule("one", "open", limit=1)], scale=1.0)
    assert monitor.check(paced(), 0) is None
    monitor.opened()
    assert monitor.check(paced(), 0) is not None
    monitor.closed()
    assert monitor.check(paced(), 0) is None
    assert monitor.max_open_seen == 1


# ---- the wire --------------------------------------------------------------------------


def test_encode() -> None:
    assert encode([4, 2, -1, True, None, "x"]) == b"\x00\x00\x00\x0c4\x002\x00-1\x001\x00\x00x\x00"


def test_negotiate() -> None:
    assert negotiate(157, 178) == 178
    assert negotiate(157, 176) == 176
    assert negotiate(100, 190) == 178


async def test_frames_split_across_reads_and_stamped_on_arrival() -> None:
    wire = FrameProtocol(lambda _protocol: None)
    data = b"API\0" + frame(b"v157..178") + encode([71, 2, 5, ""]) + encode([49, 1])
    wire.data_received(data[:3])
    wire.data_received(data[3:20])
    wire.data_received(data[20:])
    wire.connection_lost(None)
    got: list[Incoming] = []
    while not wire.inbox.empty():
        got.append(await asyncio.wait_for(wire.inbox.get(), 1))
    assert [(i.versions, i.fields) for i in got] == [
        ((157, 178), None),
        (None, ["71", "2", "5", ""]),
        (None, ["49", "1"]),
        (None, None),
    ]
    assert got[1].received == got[2].received  # both completed by the last read
