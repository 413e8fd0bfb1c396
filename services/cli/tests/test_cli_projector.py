"""`backfill projector rebuild`: the same addresses as `backfill dev`, and the child's exit code."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from backfill_cli.projector import ProjectorMissingError, rebuild
from backfill_cli.settings import stack_settings


@pytest.fixture
def stand_in_projector(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A package runnable with `python -m` that prints its arguments and environment."""
    package = tmp_path / "standin_projector"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "__main__.py").write_text(
        "import os, sys\n"
        "print('args', *sys.argv[1:])\n"
        "print('redis', os.environ['BACKFILL_REDIS_URL'])\n"
        "print('database', os.environ['BACKFILL_DATABASE_URL'])\n"
        "sys.exit(3)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))  # for our own check that it can run
    return "standin_projector"


def test_rebuild_passes_the_dev_addresses_and_returns_the_exit_code(
    stand_in_projector: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    base = {"PATH": os.environ["PATH"], "PYTHONPATH": str(tmp_path)}
    env = {"BACKFILL_DEV_REDIS_PORT": "6390"}
    settings = stack_settings(str(tmp_path / "state"), env=env)

    code = rebuild(settings, base_env=base, module=stand_in_projector)

    assert code == 3
    assert capfd.readouterr().out.splitlines() == [
        "args rebuild",
        "redis redis://127.0.0.1:6390/0",
        f"database sqlite+aiosqlite:///{tmp_path}/state/backfill.db",
    ]


def test_a_missing_projector_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ProjectorMissingError, match="uv sync --all-packages"):
        rebuild(stack_settings(str(tmp_path), env={}), module="backfill_no_such_projector")
