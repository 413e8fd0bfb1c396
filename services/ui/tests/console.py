"""Helpers for the console's tests: logging in, a second browser, waiting on the page."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import httpx
from nicegui import core, ui
from nicegui.elements.mixins.disableable_element import DisableableElement
from nicegui.elements.mixins.value_element import ValueElement
from nicegui.testing import User

from backfill_contracts import WorkerHeartbeat

PASSWORD = "correct horse battery staple"


def new_user() -> User:
    """A second browser (its own cookies) on the console that is running."""
    transport = httpx.ASGITransport(core.app)
    return User(httpx.AsyncClient(transport=transport, base_url="http://test"))


async def log_in(user: User, password: str = PASSWORD) -> None:
    await user.open("/login")
    user.find(marker="password").type(password)
    user.find(marker="login").click()
    await user.should_see(marker="logout", retries=30)


def set_values(user: User, **values: object) -> None:
    """Set fields by marker, as typing or picking would (their change handlers run)."""
    with user:
        for marker, value in values.items():
            for element in user.find(marker=marker).elements:
                assert isinstance(element, ValueElement), element
                element.value = value


def enabled(user: User, marker: str) -> bool:
    with user:
        element = user.find(marker=marker).elements.pop()
        assert isinstance(element, DisableableElement), element
        return bool(element.enabled)


def texts(user: User, marker: str) -> list[str]:
    """The text of every label under the elements marked `marker`."""
    found: list[str] = []
    with user:
        for element in user.find(marker=marker).elements:
            for label in element.descendants(include_self=True):
                if isinstance(label, ui.label | ui.link | ui.badge):
                    found.append(label.text)
    return found


async def eventually(check: Callable[[], object], within: float = 20, what: str = "") -> None:
    """Wait until `check()` passes (returns without raising AssertionError)."""
    deadline = time.monotonic() + within
    while True:
        try:
            check()
            return
        except AssertionError as error:
            if time.monotonic() > deadline:
                # The last check's own message says what the page showed instead.
                raise AssertionError(f"not met within {within}s: {what}: {error}") from None
        await asyncio.sleep(0.05)


async def eventually_async(check: Callable[[], Awaitable[None]], within: float = 10) -> None:
    """Wait until `await check()` passes (returns without raising AssertionError)."""
    deadline = time.monotonic() + within
    while True:
        try:
            await check()
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.05)


# What an ibkr-worker's heartbeat says about its gateway and IB's pacing budgets.
IBKR_INFO = {
    "ibkr": {
        "state": "connected",
        "host": "gw.example",
        "port": 4002,
        "client_id": 17,
        "account": "DU123",
        "server_version": 176,
        "last_error": "2104: market data farm connection is OK",
    },
    "pacing": {
        "identical_10s": {"used": 1, "limit": 6, "window_s": 15.0},
        "small_bars_10m": {"used": 60, "limit": 60, "window_s": 600.0},
    },
}


def beat(worker_id: str, source: str, info: dict[str, object]) -> WorkerHeartbeat:
    """A heartbeat from a worker that is not running: the projector folds it like any other."""
    now = datetime.now(UTC)
    return WorkerHeartbeat(
        worker_id=worker_id,
        source=source,
        host="box-1",
        pid=42,
        state="idle",
        started_at=now - timedelta(minutes=5),
        info=info,
        producer=worker_id,
    )
