"""Console settings; every field is an environment variable prefixed BACKFILL_."""

from __future__ import annotations

import ipaddress
import logging
import os
import secrets
import stat
import time
from pathlib import Path

from pydantic import Field, SecretStr, field_validator

from backfill_bus import RedisSettings
from backfill_readmodel.settings import DatabaseSettings

log = logging.getLogger(__name__)

SECRET_FILE = "ui-secret"


class InsecureSettingsError(Exception):
    """Raised when the console would listen beyond this machine with no password.

    Set BACKFILL_UI_PASSWORD, or listen on a loopback address (127.0.0.1, ::1, localhost).
    """


class UiSettings(RedisSettings, DatabaseSettings):
    ui_host: str = "127.0.0.1"
    ui_port: int = Field(default=8080, ge=1, le=65535)
    # Empty means no password: allowed on loopback only (see `check_exposure`).
    ui_password: SecretStr | None = None
    # Signs the session cookies; empty means one generated once and kept in the state dir.
    ui_secret: SecretStr | None = None
    # A worker silent this long is shown as not alive (as the API's BACKFILL_WORKER_TIMEOUT_S).
    worker_timeout_s: float = Field(default=15.0, gt=0)

    @field_validator("ui_password", "ui_secret")
    @classmethod
    def _empty_is_unset(cls, value: SecretStr | None) -> SecretStr | None:
        return None if value is None or not value.get_secret_value() else value

    @property
    def password(self) -> str | None:
        return None if self.ui_password is None else self.ui_password.get_secret_value()


def is_loopback(host: str) -> bool:
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a hostname other than localhost may resolve to anything


def check_exposure(settings: UiSettings) -> None:
    """Refuse to serve the console beyond this machine without a password."""
    if settings.password is None and not is_loopback(settings.ui_host):
        raise InsecureSettingsError(
            f"the console would listen on {settings.ui_host!r}, reachable from other machines, "
            "with no password: set BACKFILL_UI_PASSWORD, or BACKFILL_UI_HOST=127.0.0.1"
        )


def storage_secret(settings: UiSettings) -> str:
    """BACKFILL_UI_SECRET, else the one kept in `<state_dir>/ui-secret` (created once, 0600).

    Kept rather than generated per start, so a restarted console keeps its users logged in.
    """
    if settings.ui_secret is not None:
        return settings.ui_secret.get_secret_value()
    path = settings.state_dir / SECRET_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: of two consoles starting at once, one writes and the other reads it.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_secret(path)
    secret = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w") as file:
        file.write(secret)
    log.info("generated the session secret in %s", path)
    return secret


def _read_secret(path: Path) -> str:
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        log.warning("%s is readable by other users: chmod 600 it", path)
    for _ in range(20):  # another console may have created it and not written it yet
        secret = path.read_text().strip()
        if secret:
            return secret
        time.sleep(0.05)
    raise InsecureSettingsError(f"{path} is empty: delete it to have a new secret generated")
