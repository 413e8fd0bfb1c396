"""IB's error codes and texts, as typed outcomes (SOURCES.md, IBKR errors table).

Error 162 carries five different things, told apart only by its text. Every mapping says what
the collector does next: wait and retry, record "no data", or fail with IB's words.
"""

from __future__ import annotations

from dataclasses import dataclass

from backfill_contracts import Outcome


@dataclass(frozen=True, slots=True)
class Classified:
    outcome: Outcome
    message: str


PACING_TEXT = "pacing violation"
NO_DATA_TEXT = "returned no data"
TOO_LONG_TEXT = "time length exceed max"
NO_PERMISSION_TEXT = "no market data permissions"
CANCELLED_TEXT = "query cancelled"

CONNECTIVITY_LOST = 1100
RESTORED_DATA_LOST = 1101
RESTORED_DATA_KEPT = 1102
CLIENT_ID_IN_USE = 326
# Farm status: 2104 market data, 2106 historical data (HMDS), 2158 security definitions OK;
# 2105 HMDS broken, 2107 HMDS inactive but available on request.
HMDS_OK = frozenset({2106, 2107})
HMDS_BROKEN = 2105
FARM_OK = frozenset({2104, 2106, 2107, 2158})
NOT_CONNECTED = frozenset({502, 504, 1300})


def classify(code: int, text: str) -> Classified:
    """What an error answer to a request means. Codes not listed are upstream errors (retried)."""
    said = f"IB error {code}: {text}"
    lowered = text.lower()
    if code == 162:
        if PACING_TEXT in lowered:
            return Classified(Outcome.PACING, f"{said} (waiting, then trying again)")
        if NO_DATA_TEXT in lowered:
            return Classified(Outcome.NO_DATA, said)
        if TOO_LONG_TEXT in lowered:
            return Classified(
                Outcome.INVALID_REQUEST,
                f"{said}: the request spans more than IB allows for this bar size "
                "(a planning bug in Backfill: please report it)",
            )
        if NO_PERMISSION_TEXT in lowered:
            return Classified(
                Outcome.NO_PERMISSION,
                f"{said}: this IB account has no market data subscription for the contract",
            )
        if CANCELLED_TEXT in lowered:
            return Classified(Outcome.UPSTREAM_ERROR, f"{said} (tried again)")
        return Classified(Outcome.UPSTREAM_ERROR, said)
    if code == 200:
        return Classified(Outcome.INVALID_SYMBOL, said)
    if code == 321:
        return Classified(
            Outcome.INVALID_REQUEST, f"{said} (IB refused the request as invalid; not retried)"
        )
    if code in (354, 10197):
        return Classified(
            Outcome.NO_PERMISSION,
            f"{said}: the account lacks the subscription, or another session holds it",
        )
    if code == 366:
        return Classified(Outcome.UPSTREAM_ERROR, f"{said} (the gateway lost the query; retried)")
    if code in NOT_CONNECTED or code == CONNECTIVITY_LOST:
        return Classified(Outcome.GATEWAY_DOWN, said)
    return Classified(Outcome.UPSTREAM_ERROR, said)
