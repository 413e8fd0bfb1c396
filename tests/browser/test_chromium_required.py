"""Without Chromium the browser tests skip, saying why, or fail when CI requires them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser import conftest

pytestmark = pytest.mark.browser


def test_missing_chromium_skips_or_fails_as_asked(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(conftest, "CHROMIUM", tmp_path / "no-chromium")
    monkeypatch.delenv("BACKFILL_TEST_REQUIRE_BROWSER", raising=False)
    with pytest.raises(pytest.skip.Exception, match="need Debian's Chromium"):
        conftest._require_chromium()
    monkeypatch.setenv("BACKFILL_TEST_REQUIRE_BROWSER", "1")
    with pytest.raises(pytest.fail.Exception, match="BACKFILL_TEST_REQUIRE_BROWSER is set"):
        conftest._require_chromium()
