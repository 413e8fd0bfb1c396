"""Password login for every page and download: one shared password, signed session cookies.

The session cookie (signed with the storage secret) names a server-side session; logging in
records in it a fingerprint of the current password, so changing BACKFILL_UI_PASSWORD logs
every session out.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from collections.abc import MutableMapping
from typing import Any
from urllib.parse import quote

from nicegui import app, ui
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp

log = logging.getLogger(__name__)

LOGIN_PATH = "/login"
STATUS_PATH = "/status"
PUBLIC_PATHS = frozenset({LOGIN_PATH, STATUS_PATH})
# Routes that answer data rather than a page: 401 instead of a redirect to the login page.
DATA_PREFIXES = ("/downloads/",)
SESSION_KEY = "login"
FAILED_LOGIN_DELAY_S = 0.5  # slows guessing down; a person retyping does not notice


class Gate:
    """Who may in: anyone when there is no password (loopback only), else a logged-in session."""

    def __init__(self, password: str | None, secret: str) -> None:
        self._password = None if password is None else password.encode()
        # Not the password itself: the session store lives on disk in the state dir.
        self._fingerprint = (
            ""
            if password is None
            else hmac.new(
                secret.encode(), b"login\0" + password.encode(), hashlib.sha256
            ).hexdigest()[:32]
        )

    @property
    def open(self) -> bool:
        return self._password is None

    def check(self, attempt: str) -> bool:
        if self._password is None:
            return True
        return hmac.compare_digest(attempt.encode(), self._password)

    def admits(self, session: MutableMapping[str, Any]) -> bool:
        if self.open:
            return True
        stored = session.get(SESSION_KEY)
        return isinstance(stored, str) and hmac.compare_digest(stored, self._fingerprint)

    def log_in(self, session: MutableMapping[str, Any]) -> None:
        session[SESSION_KEY] = self._fingerprint

    @staticmethod
    def log_out(session: MutableMapping[str, Any]) -> None:
        session.pop(SESSION_KEY, None)


class LoginRequired(BaseHTTPMiddleware):
    """Every route but the login page, the status probe and NiceGUI's own assets needs a login."""

    def __init__(self, app: ASGIApp, gate: Gate) -> None:
        super().__init__(app)
        self.gate = gate

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        path = request.url.path
        # NiceGUI's static assets and websocket: a page's client id is only handed out by a
        # page, which needs a login, so nothing behind them is reachable without one.
        if self.gate.open or path in PUBLIC_PATHS or path.startswith("/_nicegui"):
            return await call_next(request)
        if self.gate.admits(app.storage.user):
            return await call_next(request)
        if path.startswith(DATA_PREFIXES):
            return PlainTextResponse("log in to the console first", status_code=401)
        target = path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"{LOGIN_PATH}?to={quote(target, safe='')}", status_code=303)


def safe_target(to: str) -> str:
    """Only a path on this console: never another site (`//evil`, `https://evil`)."""
    if to.startswith("/") and not to.startswith("//") and "\\" not in to:
        return to
    return "/"


def install(gate: Gate) -> None:
    app.add_middleware(LoginRequired, gate=gate)

    @ui.page(LOGIN_PATH, title="Log in · Backfill")
    def login_page(to: str = "/") -> None:
        session = app.storage.user
        target = safe_target(to)
        if gate.admits(session):
            ui.navigate.to(target)
            return
        client_ip = ui.context.client.ip

        async def attempt() -> None:
            if gate.check(password.value or ""):
                gate.log_in(session)
                log.info("console login from %s", client_ip)
                ui.navigate.to(target)
                return
            log.warning("failed console login from %s", client_ip)
            await asyncio.sleep(FAILED_LOGIN_DELAY_S)
            password.value = ""
            problem.set_text("Wrong password.")

        with ui.card().classes("absolute-center w-80"):
            ui.label("Backfill console").classes("text-h6")
            password = (
                ui.input("Password", password=True, password_toggle_button=True)
                .classes("w-full")
                .mark("password")
            )
            password.on("keydown.enter", attempt)
            problem = ui.label().classes("text-negative").mark("login-problem")
            ui.button("Log in", on_click=attempt).classes("w-full").mark("login")

    @app.get(STATUS_PATH, include_in_schema=False)
    async def status() -> dict[str, str]:
        """Liveness for probes: answers without a login, and tells nothing."""
        return {"status": "ok"}


def log_out(gate: Gate, session: MutableMapping[str, Any]) -> None:
    """`session` is taken while the page is built: handlers run outside the page's request."""
    gate.log_out(session)
    ui.navigate.to(LOGIN_PATH)
