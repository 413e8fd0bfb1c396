"""The universe form's checking: what the API's model refuses, worded and pinned to its field."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from backfill_bus.universes import Universe
from backfill_ui.forms import Problem
from backfill_ui.universe_form import UniverseDraft, check_universe, draft_of

TYPED: dict[str, Any] = {
    "name": "megacaps",
    "source": "sim",
    "symbols": "AAPL, MSFT\nNVDA  AAPL",
    "bar_sizes": ["1d", "1h"],
    "start": "2024-01-01",
    "end": "2024-04-01",
}


def test_a_good_draft_is_the_universe_the_api_would_store() -> None:
    checked = check_universe(UniverseDraft(**TYPED, description="  big ones "))
    assert checked.problems == []
    assert checked.universe == Universe(
        name="megacaps",
        source="sim",
        symbols=["AAPL", "MSFT", "NVDA"],
        bar_sizes=["1d", "1h"],
        start=datetime(2024, 1, 1, tzinfo=UTC),
        end=datetime(2024, 4, 1, tzinfo=UTC),
        description="big ones",
    )


@pytest.mark.parametrize(
    ("changed", "expected"),
    [
        ({"name": "big caps"}, Problem("name", "1 to 64 letters, digits, _ . or - (no spaces)")),
        ({"name": ""}, Problem("name", "1 to 64 letters, digits, _ . or - (no spaces)")),
        (
            {"source": "nowhere"},
            Problem("source", "unknown source 'nowhere'; known sources: ['ibkr', 'sim', 'yahoo']"),
        ),
        ({"symbols": " ,\n"}, Problem("symbols", "enter at least one symbol")),
        (
            {"symbols": "AAPL BRK/B"},
            Problem("symbols", "'BRK/B': 1 to 32 of A-Z a-z 0-9 . ^ = _ -"),
        ),
        ({"bar_sizes": []}, Problem("bar_sizes", "pick at least one bar size")),
        ({"start": "2024-13-01"}, Problem("start", "a date such as 2024-01-31")),
        ({"end": "2023-12-31"}, Problem("end", "must be after the start (the end is exclusive)")),
        ({"end": "2024-01-01"}, Problem("end", "must be after the start (the end is exclusive)")),
    ],
)
def test_each_refusal_names_its_field(changed: dict[str, Any], expected: Problem) -> None:
    checked = check_universe(UniverseDraft(**{**TYPED, **changed}))
    assert (checked.universe, checked.problems) == (None, [expected])


def test_every_problem_at_once_so_one_save_says_them_all() -> None:
    draft = UniverseDraft(**{**TYPED, "name": "a b", "source": "nowhere", "end": "2023-01-01"})
    assert [p.field for p in check_universe(draft).problems] == ["name", "source", "end"]


def test_the_models_own_reasons_for_what_the_form_does_not_word() -> None:
    checked = check_universe(UniverseDraft(**TYPED, description="x" * 501))
    assert checked.problems == [Problem("description", "String should have at most 500 characters")]
    bad_option = UniverseDraft(**TYPED, options={"latency_ms": "soon"})
    assert [p.field for p in check_universe(bad_option).problems] == ["options"]


def test_an_edited_universe_keeps_what_the_form_does_not_show() -> None:
    stored = Universe.model_validate(
        {**TYPED, "symbols": ["A", "B"], "options": {"latency_ms": 7}, "time_limit_s": 60}
    )
    draft = draft_of(stored)
    assert (draft.symbols, draft.start, draft.end) == ("A B", "2024-01-01", "2024-04-01")
    assert check_universe(draft).universe == stored


def test_an_empty_end_is_an_open_universe_and_edits_back_to_empty() -> None:
    checked = check_universe(UniverseDraft(**{**TYPED, "end": "  "}))
    assert checked.problems == []
    assert checked.universe is not None
    assert checked.universe.end is None
    assert draft_of(checked.universe).end == ""
