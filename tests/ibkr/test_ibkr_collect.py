"""Collecting from IBKR end to end: API -> ibkr worker -> fake TWS -> events -> projections.

Each test runs on ib_async and on ib_insync (the `ib_library` parameter).
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from backfill_readmodel.queries import BarQuery, bars_of
from backfill_readmodel.views import BarView
from tests.ibkr.conftest import IbkrStack
from tests.support.fake_tws import FakeContract

NEW_YORK = ZoneInfo("America/New_York")
# Mon 2024-03-04 to Fri 2024-03-08: five sessions of 390 one-minute bars.
WEEK = {"start": "2024-03-04", "end": "2024-03-09"}


async def bars_stored(
    ibkr: IbkrStack, symbol: str, bar_size: str = "1m", price: str = "trades"
) -> list[BarView]:
    async with ibkr.stack.engine.connect() as conn:
        return await bars_of(conn, BarQuery("ibkr", symbol, bar_size, price))


async def test_a_week_of_minute_bars_in_regular_hours(ibkr: IbkrStack) -> None:
    await ibkr.start_worker()
    job_id = await ibkr.submit(**WEEK)
    job = await ibkr.stack.wait_job(job_id)

    assert job["status"] == "succeeded", job
    assert job["progress"]["chunks_total"] == 5  # one request per day: IB's limit for 1 min
    assert job["price_type"] == "trades"
    bars = await bars_stored(ibkr, "AAPL")
    assert len(bars) == job["progress"]["bars_stored"] == 5 * 390
    assert len({b.ts for b in bars}) == len(bars)
    local = [b.ts.astimezone(NEW_YORK) for b in bars]
    assert min(t.time().isoformat() for t in local) == "09:30:00"
    assert max(t.time().isoformat() for t in local) == "15:59:00"
    assert all(b.low <= min(b.open, b.close) <= max(b.open, b.close) <= b.high for b in bars)

    kinds = [r.kind for r in ibkr.gateway.requests]
    # Qualified once, clamped once, then one request per chunk.
    assert kinds == ["details", "head", *["historical"] * 5]
    historical = [r for r in ibkr.gateway.requests if r.kind == "historical"]
    assert {r.duration for r in historical} == {"86400 S"}
    assert all(r.end_datetime.endswith(" UTC") for r in historical)
    assert {(r.bar_size, r.what_to_show, r.use_rth, r.format_date) for r in historical} == {
        ("1 min", "TRADES", True, 2)
    }


async def test_outside_regular_hours_and_other_prices_on_request(ibkr: IbkrStack) -> None:
    await ibkr.start_worker()
    job_id = await ibkr.submit(
        start="2024-03-04", end="2024-03-05", options={"use_rth": False, "what_to_show": "BID"}
    )
    job = await ibkr.stack.wait_job(job_id)
    assert job["status"] == "succeeded", job
    assert job["price_type"] == "bid"
    bars = await bars_stored(ibkr, "AAPL", price="bid")
    # 04:00 New York (09:00 UTC) to the job's end at midnight UTC (19:00 New York).
    assert len(bars) == 15 * 60
    (request,) = [r for r in ibkr.gateway.requests if r.kind == "historical"]
    assert (request.what_to_show, request.use_rth) == ("BID", False)


async def test_the_plan_starts_at_ibs_earliest_bar(ibkr: IbkrStack) -> None:
    ibkr.gateway.add_contract(
        FakeContract(
            symbol="NEWCO", sec_type="STK", exchange="SMART", currency="USD", con_id=990001,
            primary_exchange="NYSE", head_timestamp=datetime(2024, 3, 6, 14, 30, tzinfo=UTC),
        )
    )  # fmt: skip
    await ibkr.start_worker()
    job_id = await ibkr.submit("NEWCO", **WEEK)
    job = await ibkr.stack.wait_job(job_id)
    assert job["status"] == "succeeded", job
    chunks = (await ibkr.stack.api.get(f"/api/v1/jobs/{job_id}/chunks")).json()
    assert chunks[0]["start"].startswith("2024-03-06T14:30")
    assert len(await bars_stored(ibkr, "NEWCO")) == 3 * 390


async def test_daily_bars_of_a_future_stored_under_its_own_contract(ibkr: IbkrStack) -> None:
    await ibkr.start_worker()
    job_id = await ibkr.submit(
        "ES",
        bar_size="1d",
        start="2024-01-01",
        end="2024-03-01",
        options={"sec_type": "FUT", "exchange": "CME", "expiry": "20250321"},
    )
    job = await ibkr.stack.wait_job(job_id)
    assert job["status"] == "succeeded", job
    instrument = job["instrument"]
    assert instrument is not None
    assert instrument != "ES"
    bars = await bars_stored(ibkr, instrument, bar_size="1d")
    assert len(bars) == job["progress"]["bars_stored"] > 30
    # A daily bar is the exchange's day: midnight in its own zone.
    chicago = ZoneInfo("America/Chicago")  # CME futures: the fake says US/Central, like IB
    assert {b.ts.astimezone(chicago).time().isoformat() for b in bars} == {"00:00:00"}


async def test_fx_midpoints(ibkr: IbkrStack) -> None:
    await ibkr.start_worker()
    job_id = await ibkr.submit(
        "EUR.USD",
        bar_size="1h",
        start="2024-03-04",
        end="2024-03-06",
        options={"sec_type": "CASH", "what_to_show": "MIDPOINT", "use_rth": False},
    )
    job = await ibkr.stack.wait_job(job_id)
    assert job["status"] == "succeeded", job
    assert job["instrument"] == "EUR.USD" or job["instrument"] is None
    assert job["progress"]["bars_stored"] > 30


async def test_an_index(ibkr: IbkrStack) -> None:
    await ibkr.start_worker()
    job_id = await ibkr.submit(
        "SPX", bar_size="1d", start="2024-01-01", end="2024-02-01",
        options={"sec_type": "IND", "exchange": "CBOE"},
    )  # fmt: skip
    job = await ibkr.stack.wait_job(job_id)
    assert job["status"] == "succeeded", job
    assert job["progress"]["bars_stored"] >= 20


async def test_unknown_and_ambiguous_contracts_fail_as_invalid_symbols(ibkr: IbkrStack) -> None:
    await ibkr.start_worker()
    unknown = await ibkr.stack.wait_job(await ibkr.submit("NOSUCH", **WEEK))
    assert unknown["status"] == "failed"
    assert unknown["error"]["outcome"] == "invalid_symbol"
    assert "No security definition has been found" in unknown["error"]["message"]

    ambiguous = await ibkr.stack.wait_job(await ibkr.submit("AMBI", **WEEK))
    assert ambiguous["status"] == "failed"
    assert ambiguous["error"]["outcome"] == "invalid_symbol"
    assert "ambiguous" in ambiguous["error"]["message"]
    assert "primary_exchange" in ambiguous["error"]["message"]

    chosen = await ibkr.submit("AMBI", **WEEK, options={"primary_exchange": "NYSE"})
    assert (await ibkr.stack.wait_job(chosen))["status"] == "succeeded"


async def test_bad_options_are_refused_by_the_api(ibkr: IbkrStack) -> None:
    response = await ibkr.stack.api.post(
        "/api/v1/jobs",
        json={"source": "ibkr", "symbol": "ES", "bar_size": "1m", **WEEK,
              "options": {"sec_type": "FUT", "exchange": "CME"}},
    )  # fmt: skip
    assert response.status_code == 422
    assert "expiry" in response.text


async def test_the_heartbeat_shows_the_connection(ibkr: IbkrStack) -> None:
    await ibkr.start_worker()
    from tests.support.stack import wait_until

    async def connected() -> dict[str, object] | None:
        workers = (await ibkr.stack.api.get("/api/v1/workers")).json()
        for worker in workers:
            info = worker.get("info", {}).get("ibkr", {})
            if info.get("state") == "connected":
                return dict(info)
        return None

    info = await wait_until(connected, message="the worker reports its IB connection")
    assert info["port"] == ibkr.gateway.port
    assert info["account"] == "DU1234567"
    assert isinstance(info["server_version"], int)
    assert str(info["library"]).startswith(ibkr.library)
    assert isinstance(info["client_id"], int)


async def test_a_second_identical_fill_asks_ib_nothing(ibkr: IbkrStack) -> None:
    await ibkr.start_worker()
    first = await ibkr.stack.wait_job(await ibkr.submit(**WEEK))
    assert first["status"] == "succeeded", first
    assert len(ibkr.gateway.requests) == 7  # details, head, five days
    coverage = (
        await ibkr.stack.api.get(
            "/api/v1/coverage", params={"source": "ibkr", "symbol": "AAPL", "bar_size": "1m"}
        )
    ).json()
    assert (coverage["calendar"], coverage["gaps"]) == ("XNYS", [])

    for mode in ("fill_gaps", "top_up"):
        job = await ibkr.stack.wait_job(await ibkr.submit(**WEEK, mode=mode))
        assert (job["status"], job["progress"]["chunks_total"]) == ("succeeded", 0), job
    assert len(ibkr.gateway.requests) == 7  # not even qualified again
    # `full` plans (qualify, clamp) but fetches no chunk already stored.
    job = await ibkr.stack.wait_job(await ibkr.submit(**WEEK))
    assert job["progress"]["chunks_total"] == 0
    assert [r.kind for r in ibkr.gateway.requests[7:]] == ["details", "head"]
