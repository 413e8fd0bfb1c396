"""Every page and download needs a login; wrong passwords are refused; secrets stay secret."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from nicegui.testing import User
from pydantic import SecretStr

from backfill_ui.auth import Gate, safe_target
from backfill_ui.settings import (
    InsecureSettingsError,
    UiSettings,
    check_exposure,
    is_loopback,
    storage_secret,
)
from services.ui.tests.conftest import console_user
from services.ui.tests.console import PASSWORD, log_in, set_values


async def test_pages_and_downloads_need_a_login(user: User) -> None:
    for path in ("/", "/jobs", "/jobs/some-job", "/monitoring", "/ibkr"):
        await user.open(path)
        await user.should_see(marker="password")
        await user.should_not_see(marker="logout")
    download = await user.http_client.get("/downloads/some-job/bars.csv")
    assert download.status_code == 401
    probe = await user.http_client.get("/status")
    assert probe.status_code == 200
    assert probe.json() == {"status": "ok"}


async def test_a_wrong_password_is_refused(user: User, caplog: pytest.LogCaptureFixture) -> None:
    await user.open("/login?to=/monitoring")
    set_values(user, password="not the password")
    user.find(marker="login").click()
    await user.should_see("Wrong password.", retries=20)
    await user.open("/jobs")
    await user.should_see(marker="password")  # still locked out

    await log_in(user)
    await user.open("/login?to=/monitoring")  # already in: straight to where it was going
    await user.should_see(marker="workers", retries=20)
    user.find(marker="logout").click()
    await user.should_see(marker="password", retries=20)
    await user.open("/jobs")
    await user.should_see(marker="password")
    logged = caplog.text
    assert PASSWORD not in logged
    assert "not the password" not in logged
    assert "failed console login" in logged


def test_login_redirects_stay_on_the_console() -> None:
    assert safe_target("/jobs?status=failed") == "/jobs?status=failed"
    for hostile in ("//evil.example", "https://evil.example", "/\\evil.example", ""):
        assert safe_target(hostile) == "/"


def test_a_new_password_logs_every_session_out() -> None:
    session: dict[str, object] = {}
    old = Gate("old password", "secret")
    old.log_in(session)
    assert old.admits(session)
    assert not Gate("new password", "secret").admits(session)
    assert not Gate("old password", "another secret").admits(session)
    assert not old.check("old passwor")
    assert old.check("old password")


async def test_without_a_password_on_loopback_it_runs_open_and_says_so(
    redis_url: str,
    database_url: str,
    namespace: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = UiSettings(
        redis_url=redis_url,
        redis_namespace=namespace,
        database_url=database_url,
        state_dir=tmp_path,
    )
    async with console_user(settings) as user:
        await user.open("/jobs")
        await user.should_see(marker="open-mode")
        await user.should_see("No jobs yet: submit one on the Collect page.", retries=20)
    assert "the console has no password" in caplog.text
    secret = (tmp_path / "ui-secret").read_text()
    assert secret not in caplog.text


def test_the_session_secret_is_made_once_and_kept_private(tmp_path: Path) -> None:
    settings = UiSettings(state_dir=tmp_path / "state")
    first = storage_secret(settings)
    assert len(first) >= 40
    assert storage_secret(settings) == first  # kept: a restart keeps sessions valid
    assert stat.S_IMODE((tmp_path / "state" / "ui-secret").stat().st_mode) == 0o600
    given = UiSettings(state_dir=tmp_path / "other", ui_secret=SecretStr("from-the-env"))
    assert storage_secret(given) == "from-the-env"
    assert not (tmp_path / "other" / "ui-secret").exists()
    assert "from-the-env" not in repr(given)
    assert PASSWORD not in repr(UiSettings(ui_password=SecretStr(PASSWORD)))


def test_only_loopback_may_run_without_a_password() -> None:
    for host in ("127.0.0.1", "127.0.1.1", "::1", "[::1]", "localhost"):
        assert is_loopback(host)
        check_exposure(UiSettings(ui_host=host))
    for host in ("0.0.0.0", "::", "192.168.1.20", "console.example"):
        assert not is_loopback(host)
        with pytest.raises(InsecureSettingsError, match="BACKFILL_UI_PASSWORD"):
            check_exposure(UiSettings(ui_host=host))
        check_exposure(UiSettings(ui_host=host, ui_password=SecretStr("pw")))
    with pytest.raises(InsecureSettingsError):  # an empty password is no password
        check_exposure(UiSettings(ui_host="0.0.0.0", ui_password=SecretStr("")))


def test_the_console_refuses_to_start_exposed_without_a_password(tmp_path: Path) -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("BACKFILL_", "PYTEST_"))
    }
    env |= {"BACKFILL_UI_HOST": "0.0.0.0", "BACKFILL_STATE_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "backfill_ui"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done
    assert "refusing to start" in done.stderr
    assert "BACKFILL_UI_PASSWORD" in done.stderr
    assert not (tmp_path / "ui-secret").exists()  # refused before doing anything
