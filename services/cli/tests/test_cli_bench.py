"""`backfill bench` hands every argument to `python -m backfill_bench`, which it never imports."""

from __future__ import annotations

import pytest

from backfill_cli import bench
from backfill_cli.main import main


def test_bench_arguments_go_to_the_bench(capfd: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--help"]) == 0
    out = capfd.readouterr().out
    assert "usage: backfill bench" in out
    assert "--quick" in out
    assert "--database-url" in out


def test_a_missing_bench_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(bench, "MODULE", "backfill_no_such_bench")
    assert main(["bench", "--quick"]) == 1
    assert "uv sync --all-packages" in capsys.readouterr().err


def test_the_cli_lists_bench_in_its_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "bench" in capsys.readouterr().out
