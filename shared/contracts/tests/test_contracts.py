"""The message contracts: request validation, bar sizes, outcomes and the wire round trip."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from backfill_contracts import (
    SCHEMA_VERSION,
    TERMINAL_EVENT_TYPES,
    AnyJobEvent,
    BarBatch,
    BarRequest,
    BarSize,
    CancelJob,
    ChunkCollected,
    ChunkFailed,
    ChunkSpec,
    CollectBars,
    JobCancelled,
    JobFailed,
    JobRetrying,
    JobStarted,
    JobSubmitted,
    JobSucceeded,
    Outcome,
    SimOptions,
    UnknownSourceError,
    WorkerHeartbeat,
    known_sources,
    parse_command,
    parse_event,
    parse_options,
)
from backfill_contracts.errors import describe_validation_error

REQUEST: dict[str, Any] = {
    "source": "sim",
    "symbol": "AAPL",
    "bar_size": "1m",
    "start": "2024-01-01",
    "end": "2024-01-02",
}
JAN_1 = datetime(2024, 1, 1, tzinfo=UTC)
JAN_2 = datetime(2024, 1, 2, tzinfo=UTC)
TS = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
SIM_DEFAULTS = {"latency_ms": 0, "fail_every": 0}
SYMBOL_MESSAGE = "Value error, symbol must be 1 to 32 characters of A-Z a-z 0-9 . ^ = _ -"
RANGE_MESSAGE = "Value error, start must be before end (start is inclusive, end exclusive)"


def request(**changes: Any) -> BarRequest:
    return BarRequest(**{**REQUEST, **changes})


def collect(**changes: Any) -> CollectBars:
    return CollectBars(**{**REQUEST, "job_id": "job-1", **changes})


def errors_of(error: pytest.ExceptionInfo[ValidationError]) -> list[tuple[tuple[Any, ...], str]]:
    return [(item["loc"], item["msg"]) for item in error.value.errors(include_url=False)]


# --- dates and ranges -------------------------------------------------------------------------


@pytest.mark.parametrize("model", [request, collect])
@pytest.mark.parametrize(
    ("start", "expected"),
    [
        ("2024-01-01", JAN_1),
        (date(2024, 1, 1), JAN_1),
        ("2024-01-01T09:30:00", datetime(2024, 1, 1, 9, 30, tzinfo=UTC)),
        (datetime(2024, 1, 1, 9, 30), datetime(2024, 1, 1, 9, 30, tzinfo=UTC)),  # noqa: DTZ001
        ("2024-01-01T09:30:00Z", datetime(2024, 1, 1, 9, 30, tzinfo=UTC)),
        ("2024-01-01T09:30:00+02:00", datetime(2024, 1, 1, 7, 30, tzinfo=UTC)),
        (
            datetime(2024, 1, 1, 9, 30, tzinfo=ZoneInfo("America/New_York")),
            datetime(2024, 1, 1, 14, 30, tzinfo=UTC),
        ),
    ],
)
def test_start_is_utc(model: Any, start: Any, expected: datetime) -> None:
    built = model(start=start)
    assert built.start == expected
    assert built.start.tzinfo is UTC
    assert built.end == JAN_2
    assert built.end.tzinfo is UTC


def test_aware_end_is_converted_to_utc() -> None:
    built = request(end="2024-01-01T23:00:00-05:00")
    assert built.end == datetime(2024, 1, 2, 4, 0, tzinfo=UTC)
    assert built.end.tzinfo is UTC


@pytest.mark.parametrize("model", [request, collect])
@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("2024-01-02", "2024-01-01"),
        ("2024-01-01", "2024-01-01"),
        ("2024-01-01T10:00:00+02:00", "2024-01-01T08:00:00Z"),  # the same instant
        ("2024-01-01T01:00:00", "2024-01-01T00:30:00"),
    ],
)
def test_start_must_be_before_end(model: Any, start: str, end: str) -> None:
    with pytest.raises(ValidationError) as error:
        model(start=start, end=end)
    assert errors_of(error) == [((), RANGE_MESSAGE)]


def test_a_one_microsecond_range_is_accepted() -> None:
    built = request(start="2024-01-01T00:00:00", end="2024-01-01T00:00:00.000001")
    assert built.end - built.start == timedelta(microseconds=1)


# --- symbols ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "symbol",
    ["AAPL", "BRK.B", "^GSPC", "EURUSD=X", "ES_F", "BF-B", "a1", "X", "A" * 32, "9" * 32],
)
def test_symbols_accepted(symbol: str) -> None:
    assert request(symbol=symbol).symbol == symbol
    assert collect(symbol=symbol).symbol == symbol


@pytest.mark.parametrize(
    "symbol",
    ["AA PL", " AAPL", "AAPL ", "A" * 33, "", "AAPL;DROP", "\nAAPL", "A\nB", "ÄPFEL", "A/B", "A*"],
)
def test_symbols_refused(symbol: str) -> None:
    with pytest.raises(ValidationError) as error:
        request(symbol=symbol)
    assert errors_of(error) == [(("symbol",), SYMBOL_MESSAGE)]


def test_a_symbol_with_a_trailing_newline_is_refused() -> None:
    with pytest.raises(ValidationError) as error:
        request(symbol="AAPL\n")
    assert errors_of(error) == [(("symbol",), SYMBOL_MESSAGE)]


# --- bar sizes --------------------------------------------------------------------------------

BAR_SIZES: list[tuple[str, timedelta | None, bool]] = [
    ("1s", timedelta(seconds=1), True),
    ("5s", timedelta(seconds=5), True),
    ("10s", timedelta(seconds=10), True),
    ("15s", timedelta(seconds=15), True),
    ("30s", timedelta(seconds=30), True),
    ("1m", timedelta(minutes=1), True),
    ("2m", timedelta(minutes=2), True),
    ("3m", timedelta(minutes=3), True),
    ("5m", timedelta(minutes=5), True),
    ("10m", timedelta(minutes=10), True),
    ("15m", timedelta(minutes=15), True),
    ("20m", timedelta(minutes=20), True),
    ("30m", timedelta(minutes=30), True),
    ("1h", timedelta(hours=1), True),
    ("2h", timedelta(hours=2), True),
    ("3h", timedelta(hours=3), True),
    ("4h", timedelta(hours=4), True),
    ("8h", timedelta(hours=8), True),
    ("1d", timedelta(days=1), False),
    ("1w", timedelta(weeks=1), False),
    ("1mo", None, False),
]


def test_the_canonical_bar_sizes_are_exactly_these() -> None:
    assert [size.value for size in BarSize] == [value for value, _, _ in BAR_SIZES]
    assert len(BarSize) == 21


@pytest.mark.parametrize(("value", "duration", "intraday"), BAR_SIZES)
def test_bar_size(value: str, duration: timedelta | None, intraday: bool) -> None:
    size = request(bar_size=value).bar_size
    assert size is BarSize(value)
    assert size.value == value
    assert size.duration == duration
    assert size.is_intraday is intraday


@pytest.mark.parametrize("value", ["7m", "1M", "1min", "60s", "1 day", "", "1y", "1D"])
def test_unknown_bar_size_refused(value: str) -> None:
    with pytest.raises(ValidationError) as error:
        request(bar_size=value)
    [item] = error.value.errors(include_url=False)
    assert item["loc"] == ("bar_size",)
    assert item["type"] == "enum"
    assert (
        item["msg"]
        == "Input should be " + ", ".join(f"'{v}'" for v, _, _ in BAR_SIZES[:-1]) + " or '1mo'"
    )


# --- sources and options ----------------------------------------------------------------------


def test_known_sources() -> None:
    assert known_sources() == ["ibkr", "sim", "yahoo"]


@pytest.mark.parametrize("source", ["ib", "YAHOO", "SIM", ""])
def test_unknown_source_refused_naming_the_known_ones(source: str) -> None:
    with pytest.raises(ValidationError) as error:
        request(source=source, options={"anything": 1})
    # The options are not checked against a source that does not exist: one reason only.
    assert errors_of(error) == [
        (
            ("source",),
            f"Value error, unknown source {source!r}; known sources: ['ibkr', 'sim', 'yahoo']",
        )
    ]


def test_parse_options_of_an_unknown_source() -> None:
    with pytest.raises(UnknownSourceError) as error:
        parse_options("ib", {})
    assert str(error.value) == "unknown source 'ib'; known sources: ['ibkr', 'sim', 'yahoo']"


def test_unknown_option_key_refused() -> None:
    with pytest.raises(ValidationError) as error:
        request(options={"latency_ms": 5, "fail_evry": 2})
    assert errors_of(error) == [(("options", "fail_evry"), "Extra inputs are not permitted")]


def test_bad_option_value_refused() -> None:
    with pytest.raises(ValidationError) as error:
        request(options={"latency_ms": -1})
    assert errors_of(error) == [
        (("options", "latency_ms"), "Input should be greater than or equal to 0")
    ]


def test_sim_option_defaults_filled_in() -> None:
    assert request(options={}).options == SIM_DEFAULTS
    assert request(options={"fail_every": 3}).options == {"latency_ms": 0, "fail_every": 3}
    assert collect(options={"latency_ms": 7}).options == {"latency_ms": 7, "fail_every": 0}
    assert parse_options("sim", {}) == SimOptions(latency_ms=0, fail_every=0)


def test_sim_option_defaults_filled_in_when_options_are_omitted() -> None:
    assert request().options == SIM_DEFAULTS


# --- round trips on the wire ------------------------------------------------------------------

CHUNKS = [
    ChunkSpec(index=0, start=JAN_1, end=JAN_1 + timedelta(hours=12)),
    ChunkSpec(index=1, start=JAN_1 + timedelta(hours=12), end=JAN_2),
]
BARS = BarBatch(
    ts=[1704067200, 1704067260],
    open=[1.0, 2.0],
    high=[1.5, 2.5],
    low=[0.5, 1.5],
    close=[1.25, 2.25],
    volume=[100.0, 200.0],
)
JOB = {"job_id": "job-1", "attempt": 2, "seq": 7, "ts": TS, "producer": "test@host"}
EVENTS: list[AnyJobEvent | WorkerHeartbeat] = [
    JobSubmitted(
        **JOB,
        source="sim",
        symbol="BRK.B",
        bar_size=BarSize.M5,
        start=JAN_1,
        end=JAN_2,
        options=SIM_DEFAULTS,
        idempotency_key="key-1",
    ),
    JobStarted(**JOB, worker_id="w-1", price_type="trades", chunks=CHUNKS),
    ChunkCollected(
        **JOB,
        chunk=1,
        source="sim",
        symbol="BRK.B",
        bar_size=BarSize.M1,
        price_type="trades",
        bars=BARS,
    ),
    ChunkCollected(
        **JOB,
        chunk=0,
        source="sim",
        symbol="BRK.B",
        bar_size=BarSize.MO1,
        price_type="midpoint",
        bars=BarBatch(),
    ),
    ChunkFailed(**JOB, chunk=1, outcome=Outcome.PACING, message="slow down", will_retry=True),
    JobRetrying(**JOB, chunk=1, next_try=2, delay_s=1.5, outcome=Outcome.PACING),
    JobSucceeded(**JOB, chunks=2, bars=2),
    JobFailed(**JOB, outcome=Outcome.INVALID_SYMBOL, message="no such symbol", chunk=0),
    JobFailed(**JOB, outcome=Outcome.INTERNAL_ERROR, message="boom"),
    JobCancelled(**JOB, reason="operator"),
    WorkerHeartbeat(
        ts=TS,
        worker_id="w-1",
        source="sim",
        host="host",
        pid=1234,
        state="busy",
        current_job="job-1",
        started_at=JAN_1,
        info={"version": "0.1.0", "chunks": 3},
    ),
]


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: f"{e.type}")
def test_event_round_trip(event: AnyJobEvent | WorkerHeartbeat) -> None:
    wire = event.model_dump_json()
    parsed = parse_event(wire)
    assert type(parsed) is type(event)
    assert parsed == event
    assert parsed.model_dump() == event.model_dump()
    assert parse_event(wire.encode()) == event
    assert json.loads(wire)["type"] == event.type
    assert json.loads(wire)["v"] == SCHEMA_VERSION


def test_every_event_type_is_covered() -> None:
    assert {e.type for e in EVENTS} == {
        "job.submitted", "job.started", "chunk.collected", "chunk.failed", "job.retrying",
        "job.succeeded", "job.failed", "job.cancelled", "worker.heartbeat",
    }  # fmt: skip
    assert {"job.succeeded", "job.failed", "job.cancelled"} == TERMINAL_EVENT_TYPES


COMMANDS: list[CollectBars | CancelJob] = [
    CollectBars(
        **REQUEST,
        job_id="job-1",
        idempotency_key="key-1",
        options={"latency_ms": 3},
        ts=TS,
        producer="api@host",
    ),
    CancelJob(job_id="job-1", reason="no longer needed", ts=TS, producer="api@host"),
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: f"{c.type}")
def test_command_round_trip(command: CollectBars | CancelJob) -> None:
    wire = command.model_dump_json()
    parsed = parse_command(wire)
    assert type(parsed) is type(command)
    assert parsed == command
    assert parse_command(wire.encode()) == command


def test_collect_bars_values() -> None:
    command = COMMANDS[0]
    assert isinstance(command, CollectBars)
    assert command.type == "collect_bars"
    assert command.options == {"latency_ms": 3, "fail_every": 0}
    assert command.start == JAN_1
    assert command.end == JAN_2
    assert command.bar_size is BarSize.M1
    assert command.v == SCHEMA_VERSION


def test_a_command_is_validated_when_parsed() -> None:
    wire = json.dumps({**REQUEST, "type": "collect_bars", "job_id": "j", "symbol": "A B"})
    with pytest.raises(ValidationError) as error:
        parse_command(wire)
    assert errors_of(error) == [(("collect_bars", "symbol"), SYMBOL_MESSAGE)]


# --- forward compatibility --------------------------------------------------------------------


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: f"{e.type}")
def test_consumers_ignore_unknown_event_fields(event: AnyJobEvent | WorkerHeartbeat) -> None:
    body = json.loads(event.model_dump_json())
    body["added_in_v2"] = {"anything": [1, 2]}
    body["another"] = "x"
    assert parse_event(json.dumps(body)) == event


def test_nested_unknown_fields_are_ignored() -> None:
    event = EVENTS[1]
    body = json.loads(event.model_dump_json())
    body["chunks"][0]["weight"] = 3
    assert parse_event(json.dumps(body)) == event
    collected = EVENTS[2]
    body = json.loads(collected.model_dump_json())
    body["bars"]["vwap"] = [1.0, 2.0]
    assert parse_event(json.dumps(body)) == collected


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: f"{c.type}")
def test_consumers_ignore_unknown_command_fields(command: CollectBars | CancelJob) -> None:
    body = json.loads(command.model_dump_json())
    body["priority"] = 9
    assert parse_command(json.dumps(body)) == command


def test_unknown_message_type_refused() -> None:
    with pytest.raises(ValidationError) as error:
        parse_event(json.dumps({"type": "job.exploded", "job_id": "j"}))
    [item] = error.value.errors(include_url=False)
    assert item["type"] == "union_tag_invalid"
    with pytest.raises(ValidationError):
        parse_command(json.dumps({"type": "job.succeeded", "job_id": "j"}))


# --- bar batches ------------------------------------------------------------------------------


def test_bar_batch_lengths() -> None:
    assert len(BARS) == 2
    assert len(BarBatch()) == 0


@pytest.mark.parametrize("short", ["open", "high", "low", "close", "volume"])
def test_bar_batch_refuses_misaligned_columns(short: str) -> None:
    columns: dict[str, list[Any]] = {
        "ts": [1, 2], "open": [1.0, 1.0], "high": [1.0, 1.0], "low": [1.0, 1.0],
        "close": [1.0, 1.0], "volume": [1.0, 1.0],
    }  # fmt: skip
    columns[short] = [1.0]
    with pytest.raises(ValidationError) as error:
        BarBatch(**columns)
    assert errors_of(error) == [
        ((), "Value error, every bar column must have as many values as ts")
    ]


def test_bar_batch_refuses_values_without_ts() -> None:
    with pytest.raises(ValidationError):
        BarBatch(open=[1.0])


def test_a_misaligned_batch_on_the_wire_is_refused() -> None:
    body = json.loads(EVENTS[2].model_dump_json())
    body["bars"]["close"] = [1.0]
    with pytest.raises(ValidationError) as error:
        parse_event(json.dumps(body))
    assert errors_of(error) == [
        (
            ("chunk.collected", "bars"),
            "Value error, every bar column must have as many values as ts",
        )
    ]


# --- outcomes ---------------------------------------------------------------------------------

TRANSIENT = {"timeout", "upstream_error", "rate_limited", "pacing", "gateway_down"}


def test_the_outcomes_are_exactly_these() -> None:
    assert [o.value for o in Outcome] == [
        "no_data", "timeout", "upstream_error", "rate_limited", "pacing", "gateway_down",
        "invalid_symbol", "no_permission", "invalid_request", "cancelled", "dead_lettered",
        "internal_error", "in_flight",
    ]  # fmt: skip


@pytest.mark.parametrize("outcome", list(Outcome), ids=lambda o: f"{o.value}")
def test_outcome_is_transient(outcome: Outcome) -> None:
    assert outcome.is_transient is (outcome.value in TRANSIENT)


# --- validation errors in plain words ---------------------------------------------------------


def describe(call: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(ValidationError) as error:
        call(*args, **kwargs)
    return describe_validation_error(error.value)


def test_describe_a_field_error() -> None:
    assert describe(request, symbol="A B") == f"symbol: {SYMBOL_MESSAGE}"


def test_describe_a_nested_field_error() -> None:
    assert describe(request, options={"nope": 1}) == "options.nope: Extra inputs are not permitted"


def test_describe_a_model_error_has_no_location() -> None:
    assert describe(request, start="2024-01-02") == RANGE_MESSAGE


def test_describe_several_errors() -> None:
    text = describe(request, symbol="", bar_size="7m", end="yesterday")
    assert text == "; ".join(
        [
            f"symbol: {SYMBOL_MESSAGE}",
            "bar_size: Input should be "
            + ", ".join(f"'{v}'" for v, _, _ in BAR_SIZES[:-1])
            + " or '1mo'",
            "end: Input should be a valid datetime or date, input is too short",
        ]
    )


def test_describe_hides_the_command_union_names() -> None:
    wire = json.dumps({**REQUEST, "type": "collect_bars", "job_id": "j", "symbol": "A B"})
    assert describe(parse_command, wire) == f"symbol: {SYMBOL_MESSAGE}"
    assert describe(parse_command, json.dumps({"type": "cancel_job"})) == "job_id: Field required"
    bad_key = json.dumps({**REQUEST, "type": "collect_bars", "job_id": "j", "options": {"x": 1}})
    assert describe(parse_command, bad_key) == "options.x: Extra inputs are not permitted"


def test_describe_invalid_json() -> None:
    assert describe(parse_command, "not json") == "Invalid JSON: expected ident at line 1 column 2"


def test_describe_hides_the_event_union_names() -> None:
    body = json.loads(EVENTS[2].model_dump_json())
    body["bars"]["close"] = [1.0]
    assert describe(parse_event, json.dumps(body)) == (
        "bars: Value error, every bar column must have as many values as ts"
    )
    failed = json.dumps({"type": "job.failed", "job_id": "j", "outcome": "boom", "message": "m"})
    assert describe(parse_event, failed).startswith("outcome: Input should be ")
