"""submit, jobs and stats against a stand-in API served over real HTTP."""

from __future__ import annotations

import io
import os
import re
import signal
import sys
from collections.abc import Callable
from typing import Any

import pytest

from backfill_cli.main import main
from backfill_cli.models import Job, Progress
from backfill_cli.progress import ProgressBoard, progress_line

SUBMIT = ["--source", "sim", "--bar-size", "1m", "--start", "2024-01-01", "--end", "2024-04-01"]


def test_submit_follows_every_job_to_success(
    fake_api: Any, job_json: Callable[..., dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    fake_api.timelines["job-AAPL"] = [
        None,  # accepted but not projected yet: still queued
        job_json("job-AAPL", "AAPL", "queued"),
        job_json("job-AAPL", "AAPL", "running", 2),
        job_json("job-AAPL", "AAPL", "succeeded", 4),
    ]
    fake_api.timelines["job-MSFT"] = [
        job_json("job-MSFT", "MSFT", "retrying", 1),
        job_json("job-MSFT", "MSFT", "succeeded", 4),
    ]
    argv = ["submit", "AAPL", "MSFT", *SUBMIT, "--api-url", fake_api.url]
    code = main([*argv, "--option", "latency_ms=250", "--option", "flaky=true"])

    out, err = capsys.readouterr()
    assert code == 0, err
    posts = [body for method, _, _, body in fake_api.requests if method == "POST"]
    assert posts == [
        {
            "source": "sim",
            "symbol": symbol,
            "bar_size": "1m",
            "start": "2024-01-01",
            "end": "2024-04-01",
            "options": {"latency_ms": 250, "flaky": True},
        }
        for symbol in ("AAPL", "MSFT")
    ]
    assert "submitted AAPL: job job-AAPL" in out
    assert "AAPL  succeeded  4/4 chunks  1,560 bars  job job-AAPL" in out
    assert "MSFT  succeeded  4/4 chunks  1,560 bars  job job-MSFT" in out
    # Not a terminal: the progress goes to stderr as plain lines, first sight and the end.
    assert "AAPL  [" in err
    assert "] 100%  4/4 chunks  1,560 bars  succeeded" in err
    assert "\x1b[" not in err


def test_submit_exits_1_when_a_job_fails(
    fake_api: Any, job_json: Callable[..., dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    failed = job_json("job-BAD", "BAD", "failed", 1)
    failed["error"] = {"outcome": "invalid_symbol", "message": "no such symbol BAD"}
    fake_api.timelines["job-BAD"] = [failed]
    fake_api.timelines["job-OK"] = [job_json("job-OK", "OK", "succeeded", 4)]

    code = main(["submit", "BAD", "OK", *SUBMIT, "--api-url", fake_api.url])

    out, _ = capsys.readouterr()
    assert code == 1
    assert (
        "BAD  failed     1/4 chunks  390 bars  job job-BAD  invalid_symbol: no such symbol BAD"
        in out
    )
    assert "OK   succeeded" in out


def test_no_follow_prints_the_ids_and_returns(
    fake_api: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["submit", "AAPL", "AAPL", "SPY", *SUBMIT, "--no-follow", "--api-url", fake_api.url]
    )

    out, _ = capsys.readouterr()
    assert code == 0
    assert out.splitlines() == ["submitted AAPL: job job-AAPL", "submitted SPY: job job-SPY"]
    assert [m for m, _, _, _ in fake_api.requests] == ["POST", "POST"]  # AAPL sent once


def test_a_422_prints_the_reasons_and_exits_2(
    fake_api: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_api.reject["XX"] = [
        {
            "type": "value_error",
            "loc": ["body", "start"],
            "msg": "Value error, start must be before end",
        },
        {
            "type": "literal_error",
            "loc": ["body", "bar_size"],
            "msg": "Input should be '1m' or '1d'",
        },
    ]
    code = main(["submit", "XX", "SPY", *SUBMIT, "--api-url", fake_api.url])

    out, err = capsys.readouterr()
    assert code == 2
    assert "rejected XX:\n  - start: start must be before end\n  - bar_size: Input should be" in err
    assert "1 other job(s) were submitted and go on" in err
    assert "submitted SPY: job job-SPY" in out
    assert "Traceback" not in err
    assert fake_api.job_gets("job-SPY") == 0  # nothing is followed after a refusal


def test_jobs_sends_the_filters_and_prints_a_table(
    fake_api: Any, job_json: Callable[..., dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    failed = job_json("job-2", "MSFT", "failed", 3, submitted_at="2024-05-01T12:00:00Z")
    failed["error"] = {"outcome": "timeout", "message": "no answer in 60 s"}
    fake_api.job_list = {
        "jobs": [
            job_json("job-1", "AAPL", "succeeded", 4, submitted_at="2024-05-01T12:00:00+00:00"),
            failed,
        ],
        "next_cursor": "abc",
    }
    code = main(
        [
            "jobs",
            "--status",
            "failed",
            "--symbol",
            "MSFT",
            "--limit",
            "2",
            "--api-url",
            fake_api.url,
        ]
    )

    out, err = capsys.readouterr()
    assert code == 0
    _, path, query, _ = fake_api.requests[-1]
    assert path == "/api/v1/jobs"
    assert query == {"status": ["failed"], "symbol": ["MSFT"], "limit": ["2"]}
    header, first, second = out.splitlines()
    assert header.split() == [
        "JOB", "ID", "SYMBOL", "SOURCE", "BAR", "STATUS", "DONE", "CHUNKS", "BARS",
        "SUBMITTED", "FINISHED", "ERROR",
    ]  # fmt: skip
    assert first.split()[:8] == ["job-1", "AAPL", "sim", "1m", "succeeded", "100%", "4/4", "1,560"]
    assert "2024-05-01" in first or "2024-04-30" in first  # shown in local time
    assert second.split()[:5] == ["job-2", "MSFT", "sim", "1m", "failed"]
    assert second.endswith("timeout: no answer in 60 s")
    assert "more match" in err


def test_jobs_says_when_there_are_none(fake_api: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["jobs", "--api-url", fake_api.url]) == 0
    assert capsys.readouterr().out == "no jobs\n"
    assert fake_api.requests[-1][2] == {}  # no filter given, none sent


def test_stats_prints_totals_and_a_row_per_source(
    fake_api: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_api.stats = {
        "jobs_total": 12,
        "by_status": {"succeeded": 9, "failed": 2, "running": 1},
        "by_source": {"sim": {"succeeded": 9, "failed": 1}, "yahoo": {"failed": 1, "running": 1}},
        "success_rate": 0.818,
        "mean_duration_s": 125.0,
        "bars_stored": 1234567,
    }
    assert main(["stats", "--api-url", fake_api.url]) == 0

    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["jobs", "12"]
    assert ["succeeded", "9"] in [line.split() for line in lines]
    assert ["success", "rate", "81.8%"] in [line.split() for line in lines]
    assert ["mean", "duration", "2", "min", "5", "s"] in [line.split() for line in lines]
    assert ["bars", "stored", "1,234,567"] in [line.split() for line in lines]
    table = lines[lines.index("") + 1 :]
    assert table[0].split() == [
        "SOURCE",
        "QUEUED",
        "RUNNING",
        "RETRYING",
        "SUCCEEDED",
        "FAILED",
        "CANCELLED",
    ]
    assert table[1].split() == ["sim", "0", "0", "0", "9", "1", "0"]
    assert table[2].split() == ["yahoo", "0", "1", "0", "0", "1", "0"]


def test_stats_with_nothing_to_rate(fake_api: Any, capsys: pytest.CaptureFixture[str]) -> None:
    fake_api.stats = {"jobs_total": 0, "by_status": {}, "by_source": {}, "success_rate": None,
                      "mean_duration_s": None, "bars_stored": 0}  # fmt: skip
    assert main(["stats", "--api-url", fake_api.url]) == 0
    out = capsys.readouterr().out
    assert ["success", "rate", "-"] in [line.split() for line in out.splitlines()]


@pytest.mark.parametrize("command", [["stats"], ["jobs"], ["submit", "AAPL", *SUBMIT]])
def test_an_unreachable_api_is_one_line_and_exit_2(
    command: list[str], free_port: int, spawn: Callable[..., Any]
) -> None:
    # A real process, so what a person sees is checked: no traceback, one line.
    env = {**os.environ, "BACKFILL_API_URL": f"http://127.0.0.1:{free_port}"}
    child = spawn([sys.executable, "-m", "backfill_cli", *command], env)
    assert child.wait() == 2
    assert child.lines == [
        f"backfill: cannot reach the Backfill API at http://127.0.0.1:{free_port}"
        " (connection refused): is `backfill dev` running?"
    ]


def test_ctrl_c_stops_following_and_says_the_jobs_go_on(
    fake_api: Any, job_json: Callable[..., dict[str, Any]], spawn: Callable[..., Any]
) -> None:
    fake_api.timelines["job-AAPL"] = [job_json("job-AAPL", "AAPL", "running", 1)]
    child = spawn(
        [sys.executable, "-m", "backfill_cli", "submit", "AAPL", *SUBMIT, "--api-url", fake_api.url]
    )
    child.wait_for_line("AAPL  [")
    child.proc.send_signal(signal.SIGINT)

    assert child.wait() == 130
    assert "stopped following; the jobs go on: see `backfill jobs`" in child.output
    assert "Traceback" not in child.output


def test_the_bar_reads_at_a_glance() -> None:
    job = Job("j", "AAPL", status="running", progress=Progress(12, 27, 10530, 45.0))
    assert progress_line(job, 6) == (
        "AAPL    [###########.............]  45%  12/27 chunks  10,530 bars  running"
    )
    unplanned = Job("j", "MSFT", progress=Progress(0, 0, 0, None))
    assert progress_line(unplanned).endswith("  0%  0/? chunks  0 bars  queued")


def test_on_a_terminal_the_board_is_redrawn_in_place() -> None:
    stream = io.StringIO()
    board = ProgressBoard(stream, interactive=True)
    jobs = [Job("1", "A", status="running"), Job("2", "B", status="queued")]
    board.update(jobs)
    board.update(jobs)
    board.close()
    text = stream.getvalue()
    assert text.count("\x1b[2K") == 4  # each line cleared and rewritten, twice
    assert text.count("\x1b[2F") == 2  # back up two lines to redraw, then to erase
    assert text.endswith("\x1b[J")


def test_in_a_log_a_moving_job_is_printed_at_most_every_few_seconds() -> None:
    now = [0.0]
    stream = io.StringIO()
    board = ProgressBoard(stream, interactive=False, interval=5.0, clock=lambda: now[0])
    for second in range(12):
        now[0] = float(second)
        status = "running" if second % 2 else "retrying"
        board.update([Job("1", "A", status=status, progress=Progress(second, 20, 0, None))])
    now[0] = 12.5
    board.update([Job("1", "A", status="succeeded", progress=Progress(20, 20, 0, None))])
    chunk_counts = re.findall(r"(\d+/\d+) chunks", stream.getvalue())
    assert chunk_counts == ["0/20", "5/20", "10/20", "20/20"]
