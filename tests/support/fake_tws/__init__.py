"""A fake TWS / IB Gateway that the real ib_async and ib_insync clients talk to.

See `gateway.py` (FakeGateway: lifecycle, scripting, what happened), `server.py` (sessions
and what each request gets), `protocol.py` and `answers.py` (the wire), `market.py` (the
contracts), `sessions.py` and `bars.py` (trading hours and bars), `pacing.py` (IB's rules),
`messages.py` (IB's error texts) and `fixtures.py` (the pytest fixtures).
"""

from tests.support.fake_tws.gateway import FakeGateway
from tests.support.fake_tws.market import FakeContract, default_contracts
from tests.support.fake_tws.messages import (
    NO_DATA,
    NO_PERMISSION,
    PACING,
    QUERY_CANCELLED,
    TOO_LONG,
)
from tests.support.fake_tws.pacing import DEFAULT_RULES, PacingRule
from tests.support.fake_tws.records import RequestRecord, Violation

__all__ = [
    "DEFAULT_RULES",
    "NO_DATA",
    "NO_PERMISSION",
    "PACING",
    "QUERY_CANCELLED",
    "TOO_LONG",
    "FakeContract",
    "FakeGateway",
    "PacingRule",
    "RequestRecord",
    "Violation",
    "default_contracts",
]
