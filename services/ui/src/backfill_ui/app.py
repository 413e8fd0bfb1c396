"""The console application: `build_app(settings)` is its composition root, `run` serves it.

Pages are registered on NiceGUI's app when `build_app` is called, never at import, so tests
build the console with their own settings (see services/ui/tests/conftest.py).
"""

from __future__ import annotations

import logging

from nicegui import app, ui

from backfill_ui import auth, downloads
from backfill_ui.frame import Console
from backfill_ui.pages import (
    collect,
    coverage,
    ibkr,
    job_detail,
    jobs,
    monitoring,
    schedules,
    universes,
)
from backfill_ui.services import Services
from backfill_ui.settings import UiSettings, check_exposure, storage_secret

log = logging.getLogger(__name__)

TITLE = "Backfill"


def build_app(settings: UiSettings, secret: str) -> Console:
    """Register every page, route and lifecycle hook; connects to nothing until startup."""
    check_exposure(settings)
    services = Services.create(settings)
    console = Console(services, auth.Gate(settings.password, secret))
    if console.gate.open:
        log.warning(
            "the console has no password (BACKFILL_UI_PASSWORD is unset): anyone who can reach "
            "%s:%s can use it; it listens on loopback only",
            settings.ui_host,
            settings.ui_port,
        )
    auth.install(console.gate)
    downloads.register(services)
    for page in (collect, jobs, job_detail, coverage, monitoring, ibkr, universes, schedules):
        page.register(console)
    app.on_startup(services.start)
    app.on_shutdown(services.close)
    return console


def run(settings: UiSettings) -> None:
    """Serve the console until stopped (in NiceGUI's user simulation, return at once)."""
    secret = storage_secret(settings)
    build_app(settings, secret)
    ui.run(
        host=settings.ui_host,
        port=settings.ui_port,
        title=TITLE,
        storage_secret=secret,
        reload=False,
        show=False,
        show_welcome_message=False,
        favicon="📈",
        uvicorn_logging_level="warning",
        # Uvicorn keeps the handler `configure_logging` set (JSON lines in json mode).
        log_config=None,
    )
