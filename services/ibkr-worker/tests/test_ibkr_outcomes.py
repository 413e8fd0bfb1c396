"""IB's codes and texts as typed outcomes (the table in the README's IBKR section)."""

from __future__ import annotations

import pytest

from backfill_contracts import Outcome
from backfill_ibkr.outcomes import classify

HMDS = "Historical Market Data Service error message:"


@pytest.mark.parametrize(
    ("code", "text", "outcome"),
    [
        (162, f"{HMDS}Historical data request pacing violation", Outcome.PACING),
        (162, f"{HMDS}HMDS query returned no data: AAPL@SMART Trades", Outcome.NO_DATA),
        (162, f"{HMDS}Time length exceed max.", Outcome.INVALID_REQUEST),
        (162, f"{HMDS}No market data permissions for NYSE STK", Outcome.NO_PERMISSION),
        (162, f"{HMDS}API historical data query cancelled: 42", Outcome.UPSTREAM_ERROR),
        (200, "No security definition has been found for the request", Outcome.INVALID_SYMBOL),
        (321, "Error validating request.-'bP' : cause - Invalid bar size", Outcome.INVALID_REQUEST),
        (354, "Requested market data is not subscribed.", Outcome.NO_PERMISSION),
        (10197, "No market data during competing live session", Outcome.NO_PERMISSION),
        (366, "No historical data query found for ticker id:7", Outcome.UPSTREAM_ERROR),
        (
            1100,
            "Connectivity between IB and Trader Workstation has been lost.",
            Outcome.GATEWAY_DOWN,
        ),
        (504, "Not connected", Outcome.GATEWAY_DOWN),
        (999, "something new", Outcome.UPSTREAM_ERROR),
    ],
)
def test_each_error_has_its_outcome_and_keeps_ibs_words(
    code: int, text: str, outcome: Outcome
) -> None:
    classified = classify(code, text)
    assert classified.outcome is outcome
    assert classified.message.startswith(f"IB error {code}: {text}")


def test_only_waits_and_upstream_trouble_are_retried() -> None:
    retried = {
        classify(c, t).outcome.is_transient for c, t in [(162, "pacing violation"), (366, "")]
    }
    assert retried == {True}
    assert not classify(200, "No security definition").outcome.is_transient
    assert not classify(321, "Error validating request").outcome.is_transient
