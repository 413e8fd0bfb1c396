"""The committed AsyncAPI document is the one the code generates; CI fails when it is stale."""

from __future__ import annotations

import json
from pathlib import Path
from typing import get_args

from backfill_contracts import AnyEvent
from backfill_worker.asyncapi import COMMAND, render

COMMITTED = Path(__file__).parent.parent / "shared" / "contracts" / "asyncapi.json"


def test_the_committed_document_is_up_to_date() -> None:
    assert COMMITTED.exists(), f"missing {COMMITTED}: run {COMMAND}"
    assert COMMITTED.read_text() == render(), f"stale: run {COMMAND}"


def test_it_describes_every_stream_and_message() -> None:
    document = json.loads(render())
    assert document["asyncapi"] == "3.0.0"
    assert sorted(document["channels"]) == ["cmd.ibkr", "cmd.sim", "cmd.yahoo", "dlq", "events"]
    schemas = document["components"]["schemas"]
    for source, options in (("sim", "SimOptions"), ("yahoo", "YahooOptions")):
        command = schemas[f"CollectBars{source.capitalize()}"]
        assert command["properties"]["options"] == {"$ref": f"#/components/schemas/{options}"}
        assert {"idempotency_key", "correlation_id", "job_id"} <= set(command["properties"])
        binding = document["channels"][f"cmd.{source}"]["bindings"]["redis"]
        assert binding["groupName"] == f"{source}-workers"
    assert "latency_ms" in schemas["SimOptions"]["properties"]
    assert schemas["CancelJob"]["properties"]["type"]["const"] == "cancel_job"
    event_types = {
        schema["properties"]["type"]["const"]
        for schema in schemas.values()
        if "type" in schema.get("properties", {}) and "const" in schema["properties"]["type"]
    }
    every_event = {model.model_fields["type"].default for model in get_args(AnyEvent)}
    assert every_event <= event_types
    assert {"job.submitted", "worker.heartbeat", "collect_bars", "cancel_job"} <= event_types
    assert set(schemas["DeadLetter"]["required"]) == {
        "reason", "stream", "entry_id", "dead_lettered_at", "payload"
    }  # fmt: skip
