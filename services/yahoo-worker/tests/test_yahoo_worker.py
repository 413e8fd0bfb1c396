"""The Yahoo worker end to end: API -> worker (real yfinance, over HTTPS, through the proxy
setting, to the fake Yahoo) -> projector -> GET /bars, on real Redis and SQLite/PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from curl_cffi.requests import Session
from sqlalchemy import func, select

from backfill_readmodel.tables import bars, corporate_actions
from backfill_worker import Worker
from backfill_yahoo.__main__ import build_source
from backfill_yahoo.settings import YahooSettings
from tests.support.fake_yahoo.fake import FakeYahoo
from tests.support.stack import Stack, running_stack

YahooStack = Callable[..., AbstractAsyncContextManager[Stack]]


@pytest.fixture
def yahoo_stack(
    redis_url: str,
    database_url: str,
    namespace: str,
    fake_yahoo: FakeYahoo,
    fake_yahoo_session: Session[Any],  # resets yfinance's process-wide state around the test
    tmp_path: Path,
) -> YahooStack:
    """The stack with a yahoo worker built as its __main__ builds it, pointed at the fake."""

    @asynccontextmanager
    async def open_stack(**overrides: Any) -> AsyncIterator[Stack]:
        async with running_stack(redis_url, database_url, namespace, with_worker=False) as stack:
            values: dict[str, Any] = {
                "redis_url": stack.redis_url,
                "redis_namespace": stack.names.namespace,
                # It reads what is stored, as a deployed worker does (job modes).
                "database_url": stack.database_url,
                "worker_id": "yahoo-1",
                "state_dir": tmp_path,
                "yahoo_proxy_url": fake_yahoo.proxy_url,
                "yahoo_ca_bundle": fake_yahoo.ca_bundle,
                "yahoo_requests_per_s": 50.0,
                "yahoo_burst": 10,
                "yahoo_max_pause_s": 0.5,
                "retry_base_delay_s": 0.05,
                "retry_max_delay_s": 0.2,
                "heartbeat_interval_s": 0.2,
                "poll_interval_ms": 100,
            }
            settings = YahooSettings(**{**values, **overrides})
            worker = Worker(settings, build_source(settings, stack.redis))
            await worker.start()
            stack.workers.append(worker)
            yield stack

    return open_stack


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


async def _submit(stack: Stack, symbol: str, bar_size: str, start: datetime, end: datetime) -> str:
    return await stack.submit(
        source="yahoo", symbol=symbol, bar_size=bar_size,
        start=start.isoformat(), end=end.isoformat(),
    )  # fmt: skip


async def _stored(stack: Stack, symbol: str, bar_size: str) -> list[str]:
    params = {"source": "yahoo", "symbol": symbol, "bar_size": bar_size}
    body = (await stack.api.get("/api/v1/bars", params=params)).json()
    stamps = [bar["ts"] for bar in body["bars"]]
    assert len(stamps) == len(set(stamps)), "duplicate bars"
    return stamps


async def test_twenty_years_of_daily_bars_with_actions(
    yahoo_stack: YahooStack, fake_yahoo: FakeYahoo
) -> None:
    today = datetime.now(UTC).date()
    start, end = _midnight(today - timedelta(days=20 * 365)), _midnight(today)
    async with yahoo_stack() as stack:
        job_id = await _submit(stack, "AAPL", "1d", start, end)
        job = await stack.wait_job(job_id)
        assert job["status"] == "succeeded", job
        expected = fake_yahoo.expected_bars("AAPL", "1d", start, end)
        assert len(expected) > 5000
        assert len(await _stored(stack, "AAPL", "1d")) == len(expected)
        assert job["progress"]["chunks_total"] == 1
        assert len(fake_yahoo.chart_requests("AAPL")) == 2  # the tz lookup, then one chart

        async with stack.engine.connect() as conn:
            adjusted = await conn.scalar(
                select(func.count()).select_from(bars).where(bars.c.adj_close.is_not(None))
            )
            actions = (await conn.execute(select(corporate_actions))).mappings().all()
        assert adjusted == len(expected)  # raw OHLC, with the adjusted close beside it
        dividends = {d for d in fake_yahoo.dividends("AAPL") if start.date() <= d < end.date()}
        assert sorted(a["kind"] for a in actions).count("dividend") == len(dividends)
        assert [(a["ts"].date(), a["value"]) for a in actions if a["kind"] == "split"] == [
            (date(2020, 8, 31), 4.0)
        ]
        events = (await stack.api.get(f"/api/v1/jobs/{job_id}/events")).json()
        collected = [e for e in events if e["type"] == "chunk.collected"]
        assert collected[0]["data"]["exchange_tz"] == "America/New_York"


async def test_recent_minute_bars_in_weekly_chunks_and_never_a_422(
    yahoo_stack: YahooStack, fake_yahoo: FakeYahoo
) -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    start = now - timedelta(days=28)
    async with yahoo_stack() as stack:
        job_id = await _submit(stack, "MSFT", "1m", start, now)
        job = await stack.wait_job(job_id)
        assert job["status"] == "succeeded", job
        assert job["progress"]["chunks_total"] == 4
        expected = fake_yahoo.expected_bars("MSFT", "1m", start, now)
        assert len(await _stored(stack, "MSFT", "1m")) == len(expected) > 0
        statuses = [r.status for r in fake_yahoo.requests]
        assert 422 not in statuses
        assert 400 not in statuses


async def test_what_yahoo_cannot_serve_fails_at_planning(
    yahoo_stack: YahooStack, fake_yahoo: FakeYahoo
) -> None:
    now = datetime.now(UTC)
    async with yahoo_stack() as stack:
        job = await stack.wait_job(
            await _submit(stack, "AAPL", "1m", now - timedelta(days=40), now)
        )
        assert job["status"] == "failed"
        assert job["error"]["outcome"] == "invalid_request"
        assert "only for the last 29 days" in job["error"]["message"]
        assert fake_yahoo.chart_requests() == []  # never sent


async def test_an_unknown_symbol_fails_as_invalid_symbol(
    yahoo_stack: YahooStack, fake_yahoo: FakeYahoo
) -> None:
    fake_yahoo.unknown("NOPE")
    today = datetime.now(UTC).date()
    async with yahoo_stack() as stack:
        start, end = _midnight(today - timedelta(days=30)), _midnight(today)
        job = await stack.wait_job(await _submit(stack, "NOPE", "1d", start, end))
        assert job["status"] == "failed"
        assert job["error"] == {
            "outcome": "invalid_symbol",
            "message": "Yahoo does not know the symbol 'NOPE'",
        }


async def test_a_429_storm_pauses_the_pool_and_the_job_still_ends_exact(
    yahoo_stack: YahooStack, fake_yahoo: FakeYahoo
) -> None:
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = now - timedelta(days=600)  # 1h bars in 60-day chunks: a 10-chunk job
    async with yahoo_stack() as stack:
        fake_yahoo.rate_limit(8, symbol="SPY")  # yfinance retries a 429 once: 4 failed tries
        job_id = await _submit(stack, "SPY", "1h", start, now)
        job = await stack.wait_job(job_id, timeout=60)
        assert job["status"] == "succeeded", job
        assert job["progress"]["chunks_total"] == 10
        expected = fake_yahoo.expected_bars("SPY", "1h", start, now)
        assert len(await _stored(stack, "SPY", "1h")) == len(expected) > 0
        events = (await stack.api.get(f"/api/v1/jobs/{job_id}/events")).json()
        limited = [e for e in events if e["type"] == "chunk.failed"]
        assert len(limited) == 4
        assert {e["data"]["outcome"] for e in limited} == {"rate_limited"}
        collected = [e["data"]["chunk"] for e in events if e["type"] == "chunk.collected"]
        assert sorted(collected) == list(range(10))  # no chunk twice
        beats: Any = await stack.redis.xrange(stack.names.events)
        infos = [f[b"__data__"] for _, f in beats if b'"worker.heartbeat"' in f[b"__data__"]]
        assert any(b'"yahoo":"paused"' in info for info in infos), "the pause is not visible"


async def test_an_outage_and_a_dropped_connection_heal(
    yahoo_stack: YahooStack, fake_yahoo: FakeYahoo
) -> None:
    today = datetime.now(UTC).date()
    start, end = _midnight(today - timedelta(days=60)), _midnight(today)
    async with yahoo_stack() as stack:
        fake_yahoo.outage(2, symbol="QQQ")  # both of yfinance's own tries get the HTML page
        fake_yahoo.drop(1, symbol="GOOG")
        outage = await _submit(stack, "QQQ", "1d", start, end)
        dropped = await _submit(stack, "GOOG", "1d", start, end)
        for job_id, symbol in ((outage, "QQQ"), (dropped, "GOOG")):
            job = await stack.wait_job(job_id)
            assert job["status"] == "succeeded", job
            expected = fake_yahoo.expected_bars(symbol, "1d", start, end)
            assert len(await _stored(stack, symbol, "1d")) == len(expected)
            failed = [
                e
                for e in (await stack.api.get(f"/api/v1/jobs/{job_id}/events")).json()
                if e["type"] == "chunk.failed"
            ]
            assert [(e["data"]["outcome"], e["data"]["will_retry"]) for e in failed] == [
                ("upstream_error", True)
            ]


async def test_the_ca_bundle_setting_decides_whom_to_trust(
    yahoo_stack: YahooStack, fake_yahoo: FakeYahoo
) -> None:
    """Through the proxy without its CA, TLS fails: every request went through the settings."""
    today = datetime.now(UTC).date()
    start, end = _midnight(today - timedelta(days=10)), _midnight(today)
    async with yahoo_stack(yahoo_ca_bundle=None, max_chunk_tries=2) as stack:
        job = await stack.wait_job(await _submit(stack, "AAPL", "1d", start, end))
        assert job["status"] == "failed"
        assert job["error"]["outcome"] == "upstream_error"
        assert job["error"]["message"].startswith("could not reach Yahoo")
        assert fake_yahoo.chart_requests() == []  # TLS never completed


async def test_adjusted_prices_on_request_stored_beside_the_raw_ones(
    yahoo_stack: YahooStack,
) -> None:
    start, end = datetime(2020, 8, 1, tzinfo=UTC), datetime(2020, 10, 1, tzinfo=UTC)
    async with yahoo_stack() as stack:
        raw_job = await _submit(stack, "AAPL", "1d", start, end)
        adjusted_job = await stack.submit(
            source="yahoo", symbol="AAPL", bar_size="1d", start=start.isoformat(),
            end=end.isoformat(), options={"adjusted": True},
        )  # fmt: skip
        assert (await stack.wait_job(raw_job))["status"] == "succeeded"
        job = await stack.wait_job(adjusted_job)
        assert job["status"] == "succeeded", job
        assert job["price_type"] == "adjusted"
        params = {"source": "yahoo", "symbol": "AAPL", "bar_size": "1d"}
        raw = (await stack.api.get("/api/v1/bars", params=params)).json()["bars"]
        adj = (
            await stack.api.get("/api/v1/bars", params={**params, "price_type": "adjusted"})
        ).json()["bars"]
        assert [b["ts"] for b in adj] == [b["ts"] for b in raw]
        async with stack.engine.connect() as conn:
            closes = dict(
                (await conn.execute(
                    select(bars.c.ts, bars.c.adj_close).where(
                        bars.c.source == "yahoo", bars.c.price_type == "trades"
                    )
                )).all()
            )  # fmt: skip
        for raw_bar, adj_bar in zip(raw, adj, strict=True):
            ratio = closes[datetime.fromisoformat(raw_bar["ts"])] / raw_bar["close"]
            assert adj_bar["close"] == pytest.approx(raw_bar["close"] * ratio)
            assert adj_bar["open"] == pytest.approx(raw_bar["open"] * ratio)
            assert adj_bar["volume"] == raw_bar["volume"]
        # Yahoo's close is split-adjusted already; the dividends paid since make the rest.
        assert all(a["close"] < r["close"] for a, r in zip(adj, raw, strict=True))


async def test_a_second_identical_request_asks_yahoo_nothing(
    yahoo_stack: YahooStack, fake_yahoo: FakeYahoo
) -> None:
    start, end = _midnight(date(2024, 1, 1)), _midnight(date(2024, 4, 1))
    async with yahoo_stack() as stack:
        first = await stack.wait_job(await _submit(stack, "MSFT", "1d", start, end))
        assert first["status"] == "succeeded", first
        assert len(fake_yahoo.chart_requests("MSFT")) == 2  # the tz lookup, then one chart
        fake_yahoo.clear_requests()
        series = {"source": "yahoo", "symbol": "MSFT", "bar_size": "1d"}
        coverage = (await stack.api.get("/api/v1/coverage", params=series)).json()
        assert coverage["calendar"] == "XNYS"
        assert coverage["gaps"] == []  # New York's sessions, holidays left out

        for mode in ("full", "fill_gaps", "top_up"):
            job_id = await stack.submit(
                **series, start=start.isoformat(), end=end.isoformat(), mode=mode
            )
            job = await stack.wait_job(job_id)
            assert job["status"] == "succeeded", job
            assert job["progress"]["chunks_total"] == 0, mode
        assert fake_yahoo.requests == []


async def test_adjusted_on_request_from_the_actions_yahoo_sent(
    yahoo_stack: YahooStack, fake_yahoo: FakeYahoo
) -> None:
    """The dividend and split come through yfinance and the worker, stamped as the bars are:
    `adjust=all` scales the bars before the ex-date only, and the split (already in Yahoo's
    prices) changes nothing."""
    fake_yahoo.add_symbol(
        "ADJQ", dividends={date(2024, 3, 6): 1.0}, splits={date(2024, 3, 7): (2, 1)}
    )
    start, end = datetime(2024, 3, 1, tzinfo=UTC), datetime(2024, 3, 9, tzinfo=UTC)
    async with yahoo_stack() as stack:
        job = await stack.wait_job(await _submit(stack, "ADJQ", "1d", start, end))
        assert job["status"] == "succeeded", job
        params = {"source": "yahoo", "symbol": "ADJQ", "bar_size": "1d"}

        async def bars_with(adjust: str) -> list[dict[str, Any]]:
            answer = await stack.api.get("/api/v1/bars", params={**params, "adjust": adjust})
            assert answer.status_code == 200, answer.text
            found: list[dict[str, Any]] = answer.json()["bars"]
            return found

        raw, splits, adjusted = [await bars_with(a) for a in ("none", "splits", "all")]
        days = [datetime.fromisoformat(b["ts"]).date() for b in raw]
        assert days == [date(2024, 3, d) for d in (1, 4, 5, 6, 7, 8)]
        assert splits == raw
        factor = 1 - 1.0 / fake_yahoo.bar("ADJQ", "1d", "2024-03-05").close
        for day, r, a in zip(days, raw, adjusted, strict=True):
            expected = factor if day < date(2024, 3, 6) else 1.0
            for name in ("open", "high", "low", "close"):
                assert a[name] == pytest.approx(r[name] * expected, rel=1e-12), (day, name)
            assert a["volume"] == r["volume"]
