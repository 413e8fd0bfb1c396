"""Where the CLI looks for its state, database, Redis and API."""

from __future__ import annotations

from pathlib import Path

import pytest

from backfill_cli.settings import SettingsError, api_url, redis_url, stack_settings


def test_defaults_live_under_an_absolute_dot_backfill(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = stack_settings(None, 8000, env={})
    assert settings.state_dir == tmp_path.resolve() / ".backfill"
    assert (
        settings.database_url == f"sqlite+aiosqlite:///{tmp_path.resolve()}/.backfill/backfill.db"
    )
    assert settings.redis_url == "redis://127.0.0.1:6380/0"
    assert settings.start_redis is True
    assert settings.docs_url == "http://127.0.0.1:8000/docs"


def test_flag_beats_env_for_the_state_dir(tmp_path: Path) -> None:
    env = {"BACKFILL_STATE_DIR": str(tmp_path / "from-env")}
    assert stack_settings(None, env=env).state_dir == tmp_path / "from-env"
    assert stack_settings(str(tmp_path / "flag"), env=env).state_dir == tmp_path / "flag"


def test_given_urls_are_used_as_they_are(tmp_path: Path) -> None:
    env = {
        "BACKFILL_DATABASE_URL": "postgresql+asyncpg://u@db/backfill",
        "BACKFILL_REDIS_URL": "redis://elsewhere:6379/2",
        "BACKFILL_DEV_REDIS_PORT": "7000",
    }
    settings = stack_settings(str(tmp_path), 9000, env=env)
    assert settings.database_url == "postgresql+asyncpg://u@db/backfill"
    assert settings.redis_url == "redis://elsewhere:6379/2"
    assert settings.start_redis is False
    child = settings.child_env({"PATH": "/bin"})
    assert child["PATH"] == "/bin"
    assert child["BACKFILL_REDIS_URL"] == "redis://elsewhere:6379/2"
    assert child["BACKFILL_DATABASE_URL"] == "postgresql+asyncpg://u@db/backfill"
    assert child["BACKFILL_STATE_DIR"] == str(tmp_path)
    assert child["BACKFILL_API_HOST"] == "127.0.0.1"
    assert child["BACKFILL_API_PORT"] == "9000"


def test_the_dev_redis_port_comes_from_env() -> None:
    assert redis_url({"BACKFILL_DEV_REDIS_PORT": "7001"}) == "redis://127.0.0.1:7001/0"
    with pytest.raises(SettingsError, match="BACKFILL_DEV_REDIS_PORT"):
        redis_url({"BACKFILL_DEV_REDIS_PORT": "redis"})
    with pytest.raises(SettingsError):
        redis_url({"BACKFILL_DEV_REDIS_PORT": "70000"})


def test_api_url_flag_then_env_then_default() -> None:
    assert api_url(None, {}) == "http://127.0.0.1:8000"
    assert api_url(None, {"BACKFILL_API_URL": "http://h:1/"}) == "http://h:1"
    assert api_url("http://flag:2", {"BACKFILL_API_URL": "http://h:1"}) == "http://flag:2"


def test_passwords_are_masked_in_printed_urls() -> None:
    from backfill_cli.settings import without_password

    url = "postgresql+asyncpg://backfill:s3cret@db:5432/backfill"
    assert without_password(url) == "postgresql+asyncpg://backfill:***@db:5432/backfill"
    assert without_password("redis://127.0.0.1:6380/0") == "redis://127.0.0.1:6380/0"
    assert without_password("sqlite+aiosqlite:////tmp/x.db") == "sqlite+aiosqlite:////tmp/x.db"
