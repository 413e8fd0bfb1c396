"""A fake Yahoo Finance that the real yfinance talks to over HTTPS, through its proxy setting.

See `fake.py` (endpoints, failures), `market.py` (calendar and bar rules), `yfinance_state.py`
(what of yfinance's process-wide state is reset) and `fixtures.py` (the pytest fixtures).
"""

from tests.support.fake_yahoo.fake import FakeYahoo, RequestRecord, When
from tests.support.fake_yahoo.market import Bar, SymbolSpec

__all__ = ["Bar", "FakeYahoo", "RequestRecord", "SymbolSpec", "When"]
