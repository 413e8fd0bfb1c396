"""The console under NiceGUI's simulated `user`, built by its own factory with test settings.

NiceGUI 3.18's `user` fixture (nicegui.testing.user_plugin, registered in the root conftest)
runs a main file; the console is an app factory instead, so `user` is overridden here with
the same steps the plugin takes (`user_simulation`), calling `backfill_ui.app.run(settings)`
between NiceGUI's reset and its startup. The console then reads real projections, from a real
Redis and SQLite or PostgreSQL, fed by the in-process stack (API, projector, sim worker).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from nicegui import core, ui
from nicegui.functions.download import download
from nicegui.functions.navigate import Navigate
from nicegui.functions.notify import notify
from nicegui.testing import User
from nicegui.testing.general import nicegui_reset_globals
from pydantic import SecretStr

from backfill_ui.app import run
from backfill_ui.settings import UiSettings
from services.ui.tests.console import PASSWORD
from tests.support.stack import Stack, running_stack


@asynccontextmanager
async def console_user(settings: UiSettings) -> AsyncIterator[User]:
    """A simulated browser on a console built from `settings` (a fresh NiceGUI app each time)."""
    with nicegui_reset_globals():
        os.environ["NICEGUI_USER_SIMULATION"] = "true"
        try:
            run(settings)  # registers everything; ui.run returns at once when simulated
            async with core.app.router.lifespan_context(core.app):
                transport = httpx.ASGITransport(core.app)
                async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                    yield User(client)
        finally:
            os.environ.pop("NICEGUI_USER_SIMULATION", None)
            ui.navigate = Navigate()
            ui.notify = notify
            ui.download = download


@pytest.fixture
async def stack(redis_url: str, database_url: str, namespace: str) -> AsyncIterator[Stack]:
    async with running_stack(redis_url, database_url, namespace) as stack:
        yield stack


@pytest.fixture
def ui_settings(redis_url: str, database_url: str, namespace: str, tmp_path: Path) -> UiSettings:
    return UiSettings(
        redis_url=redis_url,
        redis_namespace=namespace,
        database_url=database_url,
        state_dir=tmp_path / "ui-state",
        ui_password=SecretStr(PASSWORD),
        worker_timeout_s=5,
    )


@pytest.fixture
async def user(
    stack: Stack, ui_settings: UiSettings, caplog: pytest.LogCaptureFixture
) -> AsyncIterator[User]:
    async with console_user(ui_settings) as user:
        yield user
    errors = [r for r in caplog.get_records("call") if r.levelname == "ERROR"]
    if errors:
        pytest.fail(f"the console logged errors: {[r.getMessage() for r in errors]}")
