"""`--option key=value` parsing and the argument rules of the command line."""

from __future__ import annotations

import argparse

import pytest

from backfill_cli.main import build_parser, main
from backfill_cli.options import options_dict, parse_option, parse_value


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("5", 5),
        ("-3", -3),
        ("0", 0),
        ("2.5", 2.5),
        ("1e3", 1000.0),
        ("true", True),
        ("False", False),
        ("TRUE", True),
        ("abc", "abc"),
        ("", ""),
        ("nan", "nan"),
        ("inf", "inf"),
        ("2024-01-01", "2024-01-01"),
    ],
)
def test_values_are_typed_as_meant(raw: str, expected: object) -> None:
    value = parse_value(raw)
    assert value == expected
    assert type(value) is type(expected)


def test_an_option_splits_at_the_first_equals_sign() -> None:
    assert parse_option("latency_ms=250") == ("latency_ms", 250)
    assert parse_option("expr=a=b") == ("expr", "a=b")
    assert parse_option(" flag =true") == ("flag", True)


@pytest.mark.parametrize("bad", ["novalue", "=5", ""])
def test_an_option_without_key_or_equals_is_refused(bad: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_option(bad)


def test_options_given_twice_are_refused() -> None:
    assert options_dict([("a", 1), ("b", "x")]) == {"a": 1, "b": "x"}
    with pytest.raises(ValueError, match="more than once"):
        options_dict([("a", 1), ("a", 2)])


def test_submit_collects_repeated_options() -> None:
    job = ["--source", "sim", "--bar-size", "1m", "--start", "2024-01-01"]
    options = ["--option", "latency_ms=5", "--option", "fail_every=0"]
    args = build_parser().parse_args(["submit", "AAPL", "MSFT", *job, *options, "--no-follow"])
    assert args.symbols == ["AAPL", "MSFT"]
    assert args.options == [("latency_ms", 5), ("fail_every", 0)]
    assert args.no_follow is True
    assert args.end is None


@pytest.mark.parametrize(
    "argv",
    [
        ["submit", "AAPL", "--source", "sim", "--bar-size", "1m"],  # no --start
        ["submit", "--source", "sim", "--bar-size", "1m", "--start", "2024-01-01"],  # no symbol
        ["submit", "A", "--source", "s", "--bar-size", "1m", "--start", "x", "--option", "oops"],
        ["jobs", "--status", "lost"],
        ["jobs", "--limit", "0"],
        ["dev", "--api-port", "70000"],
        ["projector"],
        [],
    ],
)
def test_bad_arguments_are_usage_errors(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert "usage: backfill" in capsys.readouterr().err


def test_duplicate_option_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["submit", "A", "--source", "sim", "--bar-size", "1m", "--start", "2024-01-01"]
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--option", "a=1", "--option", "a=2"])
    assert exit_info.value.code == 2
    assert "'a' is given more than once" in capsys.readouterr().err
