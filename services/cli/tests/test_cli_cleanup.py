"""`backfill cleanup` against a stand-in API served over real HTTP."""

from __future__ import annotations

from typing import Any

import pytest

from backfill_cli.main import main
from backfill_cli.tables import local_time

CLEANUP = "/api/v1/maintenance/cleanup"


def _cleanup_queries(fake_api: Any) -> list[dict[str, list[str]]]:
    return [q for m, p, q, _ in fake_api.requests if (m, p) == ("POST", CLEANUP)]


def test_cleanup_asks_for_the_days_and_says_what_it_asked(
    fake_api: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["cleanup", "--days", "30", "--api-url", fake_api.url])

    out, err = capsys.readouterr()
    assert code == 0, err
    assert _cleanup_queries(fake_api) == [{"days": ["30"]}]
    assert out == (
        "cleanup requested (--days 30): finished jobs that ended before 2024-06-23T12:00:00Z"
        f" ({local_time('2024-06-23T12:00:00Z')} local time) will be deleted with their"
        " chunks and history\n"
        "bars are kept; the projector deletes when it reaches the request on the event log\n"
    )


def test_cleanup_without_days_leaves_the_retention_to_the_api(
    fake_api: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["cleanup", "--api-url", fake_api.url]) == 0
    assert _cleanup_queries(fake_api) == [{}]
    assert capsys.readouterr().out.startswith(
        "cleanup requested (the API's default retention): finished jobs that ended before"
    )


def test_cleanup_zero_days_is_allowed(fake_api: Any) -> None:
    assert main(["cleanup", "--days", "0", "--api-url", fake_api.url]) == 0
    assert _cleanup_queries(fake_api) == [{"days": ["0"]}]


@pytest.mark.parametrize("days", ["-1", "1.5", "many"])
def test_cleanup_refuses_days_that_are_not_a_whole_number(
    fake_api: Any, capsys: pytest.CaptureFixture[str], days: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["cleanup", "--days", days, "--api-url", fake_api.url])
    assert exited.value.code == 2
    assert "argument --days:" in capsys.readouterr().err
    assert _cleanup_queries(fake_api) == []


def test_cleanup_refused_by_the_api(fake_api: Any, capsys: pytest.CaptureFixture[str]) -> None:
    fake_api.cleanup = (
        422,
        {"detail": [{"loc": ["query", "days"], "msg": "Input should be less than 36500"}]},
    )
    assert main(["cleanup", "--days", "99999", "--api-url", fake_api.url]) == 2
    assert capsys.readouterr().err == (
        "backfill: the API refused the request:\n  - days: Input should be less than 36500\n"
    )


def test_cleanup_answer_without_a_cutoff(fake_api: Any, capsys: pytest.CaptureFixture[str]) -> None:
    fake_api.cleanup = (202, {"status": "ok"})
    assert main(["cleanup", "--api-url", fake_api.url]) == 1
    assert capsys.readouterr().err == (
        "backfill: the API accepted the cleanup but sent no cutoff: {'status': 'ok'}\n"
    )


def test_cleanup_with_no_api(free_port: int, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cleanup", "--api-url", f"http://127.0.0.1:{free_port}"]) == 2
    assert capsys.readouterr().err == (
        f"backfill: cannot reach the Backfill API at http://127.0.0.1:{free_port}"
        " (connection refused): is `backfill dev` running?\n"
    )
