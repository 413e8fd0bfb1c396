"""The README stays true: its configuration table matches the code.

Its examples (redis-cli, curl, the Python client) run in tests/test_readme_examples.py.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic_settings import BaseSettings

from backfill_api.settings import ApiSettings
from backfill_bus.logs import LogSettings
from backfill_ibkr.settings import IbkrSettings
from backfill_projector.settings import ProjectorSettings
from backfill_ui.settings import UiSettings
from backfill_worker import WorkerSettings
from backfill_yahoo.settings import YahooSettings

README = Path(__file__).parent.parent / "README.md"
# Read by the CLI and the test suite from the environment, not through a settings class.
OUTSIDE_SETTINGS = {
    "BACKFILL_API_URL",
    "BACKFILL_API_TOKEN",
    "BACKFILL_DEV_REDIS_PORT",
    "BACKFILL_TEST_POSTGRES_URL",
    "BACKFILL_TEST_REQUIRE_BROWSER",
    "BACKFILL_TEST_REQUIRE_POSTGRES",
}


def _variables(settings: type[BaseSettings]) -> set[str]:
    prefix = settings.model_config.get("env_prefix", "")
    return {f"{prefix}{name}".upper() for name in settings.model_fields}


def test_the_configuration_table_lists_every_setting() -> None:
    table = set(re.findall(r"^\| `(BACKFILL_[A-Z_]+)` \|", README.read_text(), re.MULTILINE))
    classes = (
        ApiSettings, ProjectorSettings, WorkerSettings, YahooSettings, IbkrSettings, UiSettings,
        LogSettings,  # read by every entry point through `configure_logging`
    )  # fmt: skip
    in_code = set().union(*(_variables(s) for s in classes))
    assert table == in_code | OUTSIDE_SETTINGS
