"""The `backfill` command line: argument parsing and dispatch, nothing else."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from backfill_cli import bench, dev, projector, queries, schedules, tokens, universes
from backfill_cli.api_client import (
    ApiAuthError,
    ApiClient,
    ApiRejectedError,
    ApiResponseError,
    ApiUnreachableError,
    JobRequest,
)
from backfill_cli.api_token import TokenFileError, client_token
from backfill_cli.cleanup import cleanup
from backfill_cli.coverage import show_coverage
from backfill_cli.models import STATUSES
from backfill_cli.options import options_dict, parse_option
from backfill_cli.settings import (
    DEFAULT_API_PORT,
    DEFAULT_METRICS_PORT_BASE,
    DEFAULT_UI_PORT,
    SettingsError,
    api_url,
    redis_url,
    stack_settings,
    state_dir,
)
from backfill_cli.submit import submit

EXIT_FAILED = 1
EXIT_USAGE = 2  # also: the API is unreachable or refused the request
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="backfill", description="Backfill: historical market-data collection."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    api = argparse.ArgumentParser(add_help=False)
    api.add_argument(
        "--api-url",
        help="API base URL (default: $BACKFILL_API_URL, else http://127.0.0.1:8000)",
    )
    state = argparse.ArgumentParser(add_help=False)
    state.add_argument(
        "--state-dir",
        help="where local data lives (default: $BACKFILL_STATE_DIR, else ./.backfill)",
    )

    run_dev = commands.add_parser(
        "dev", parents=[state], help="run the whole stack as local processes (no Docker)"
    )
    run_dev.add_argument("--api-port", type=_port, default=DEFAULT_API_PORT, help="default: 8000")
    run_dev.add_argument(
        "--ui-port", type=_port, default=DEFAULT_UI_PORT, help="the console's port; default: 8080"
    )
    run_dev.add_argument(
        "--metrics-port-base",
        type=_metrics_base,
        default=DEFAULT_METRICS_PORT_BASE,
        help="Prometheus /metrics of the projector on this port and of the sim, yahoo and ibkr"
        " workers on the next three; 0 turns them off; default: 9101",
    )

    sub = commands.add_parser(
        "submit", parents=[api], help="submit one job per symbol and follow them"
    )
    sub.add_argument("symbols", nargs="+", metavar="SYMBOL")
    sub.add_argument("--source", required=True, help="data source, e.g. sim, yahoo, ibkr")
    sub.add_argument("--bar-size", required=True, help="e.g. 1m, 5m, 1h, 1d")
    sub.add_argument("--start", required=True, help="first day (inclusive), e.g. 2024-01-01")
    sub.add_argument("--end", help="last day (exclusive); default: today (UTC)")
    sub.add_argument(
        "--option",
        dest="options",
        action="append",
        type=parse_option,
        default=[],
        metavar="KEY=VALUE",
        help="a source option; numbers and true/false are typed (repeatable)",
    )
    sub.add_argument(
        "--mode",
        choices=("full", "fill_gaps", "top_up"),
        default="full",
        help="full: the range, less chunks already stored; fill_gaps: only what is missing in"
        " it; top_up: what is missing after the last stored bar (default: full)",
    )
    sub.add_argument(
        "--force", action="store_true", help="fetch again what is stored or had no data"
    )
    sub.add_argument("--no-follow", action="store_true", help="print the job ids and return")

    cover = commands.add_parser(
        "coverage", parents=[api], help="what a series holds, and its gaps with their reasons"
    )
    cover.add_argument("symbol", metavar="SYMBOL")
    cover.add_argument("--source", required=True, help="data source, e.g. sim, yahoo, ibkr")
    cover.add_argument("--bar-size", required=True, help="e.g. 1m, 5m, 1h, 1d")
    cover.add_argument("--price-type", default="trades", help="default: trades")
    cover.add_argument("--start", help="inclusive; default: the first stored bar")
    cover.add_argument("--end", help="exclusive; default: just past the last stored bar")
    cover.add_argument("--calendar", help="sim, or an exchange such as XNYS (default by source)")

    jobs = commands.add_parser("jobs", parents=[api], help="list jobs, newest first")
    jobs.add_argument("--status", choices=STATUSES)
    jobs.add_argument("--source")
    jobs.add_argument("--symbol")
    jobs.add_argument("--limit", type=_positive, default=None)

    commands.add_parser("stats", parents=[api], help="job counts, success rate, bars stored")

    _universe_parser(commands, api)
    _schedule_parser(commands, api)

    clean = commands.add_parser(
        "cleanup",
        parents=[api],
        help="delete jobs that finished more than N days ago (their bars stay)",
    )
    clean.add_argument(
        "--days",
        type=_whole,
        default=None,
        help="keep jobs finished in the last N days (default: the API's retention setting)",
    )

    token = commands.add_parser(
        "token", help="API tokens kept in Redis: create, list, revoke (never shown again)"
    )
    token_commands = token.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    make = token_commands.add_parser("create", help="make a token and print it, once")
    make.add_argument(
        "--scope", required=True, choices=("read", "submit", "admin"), help="what it may do"
    )
    make.add_argument("--name", help="a name to list and revoke it by (default: generated)")
    token_commands.add_parser("list", help="names, scopes and creation times (never tokens)")
    drop = token_commands.add_parser("revoke", help="delete a token: the API refuses it at once")
    drop.add_argument("name")

    # Parsed by the bench itself (see main): listed here for `backfill --help`.
    commands.add_parser(
        "bench",
        add_help=False,
        help="benchmark the local stack: --quick or --full (`backfill bench --help`)",
    )

    proj = commands.add_parser("projector", help="projector maintenance")
    proj_commands = proj.add_subparsers(dest="projector_command", required=True, metavar="ACTION")
    proj_commands.add_parser(
        "rebuild", parents=[state], help="rebuild the projections from the event log"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    given = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    try:
        if given[:1] == ["bench"]:  # every other argument is the bench's own
            return bench.run(given[1:])
        return _dispatch(parser, parser.parse_args(given))
    except KeyboardInterrupt:
        # Ctrl-C outside the places that handle it themselves: quiet, with the shell's code.
        sys.stderr.write("\ninterrupted\n")
        return EXIT_INTERRUPTED
    except ApiUnreachableError as exc:
        return _fail(f"{exc}: is `backfill dev` running?", EXIT_USAGE)
    except ApiRejectedError as exc:
        return _fail("the API refused the request:\n" + _bullets(exc.reasons), EXIT_USAGE)
    except ApiAuthError as exc:
        return _fail(str(exc), EXIT_USAGE)
    except ApiResponseError as exc:
        return _fail(str(exc), EXIT_FAILED)
    except (
        SettingsError,
        dev.DevError,
        projector.ProjectorMissingError,
        tokens.TokenCommandError,
        TokenFileError,
        bench.BenchMissingError,
    ) as exc:
        return _fail(str(exc), EXIT_FAILED)
    except BrokenPipeError:
        # `backfill jobs | head`: the reader left. Point stdout at /dev/null so the flush at
        # exit does not fail a second time (https://docs.python.org/3/library/signal.html#note-on-sigpipe).
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILED


def _dispatch(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    env = os.environ
    if args.command == "dev":
        return dev.run(
            stack_settings(
                args.state_dir,
                args.api_port,
                env,
                args.ui_port,
                metrics_port_base=args.metrics_port_base,
            )
        )
    if args.command == "projector":
        return projector.rebuild(stack_settings(args.state_dir, env=env))
    if args.command == "token":
        return _token(args, env)
    token = client_token(env, state_dir(None, env))
    with ApiClient(api_url(args.api_url, env), token=token) as client:
        if args.command == "submit":
            return _submit(parser, client, args)
        if args.command == "jobs":
            filters = {k: getattr(args, k) for k in ("status", "source", "symbol", "limit")}
            return queries.list_jobs(client, filters, sys.stdout, sys.stderr)
        if args.command == "cleanup":
            return cleanup(client, args.days, sys.stdout)
        if args.command == "coverage":
            keys = ("source", "symbol", "bar_size", "price_type", "start", "end", "calendar")
            body = client.coverage({k: getattr(args, k) for k in keys})
            return show_coverage(body, sys.stdout)
        if args.command == "universe":
            return _universe(parser, client, args)
        if args.command == "schedule":
            return _schedule(client, args)
        return queries.show_stats(client, sys.stdout)


def _universe_parser(commands: Any, api: argparse.ArgumentParser) -> None:
    universe = commands.add_parser(
        "universe", help="named lists of instruments, submitted as one run of jobs"
    )
    actions = universe.add_subparsers(dest="universe_command", required=True, metavar="ACTION")
    make = actions.add_parser(
        "create", parents=[api], help="create (or replace) a universe; needs an admin token"
    )
    make.add_argument("name")
    make.add_argument("--source", required=True, help="data source, e.g. sim, yahoo, ibkr")
    make.add_argument("--symbols", nargs="+", required=True, metavar="SYMBOL")
    make.add_argument(
        "--bar-size", dest="bar_sizes", action="append", required=True, help="repeatable: 1d, 1h"
    )
    make.add_argument("--start", required=True, help="first day (inclusive), e.g. 2024-01-01")
    make.add_argument(
        "--end",
        help="last day (exclusive); left out, the universe is open: each run collects up to "
        "the moment it is submitted, as a schedule's top-up needs",
    )
    make.add_argument(
        "--option",
        dest="options",
        action="append",
        type=parse_option,
        default=[],
        metavar="KEY=VALUE",
        help="a source option for every job (repeatable)",
    )
    make.add_argument("--description")
    actions.add_parser("list", parents=[api], help="every universe")
    for action, text in (("show", "a universe and its runs"), ("delete", "forget a universe")):
        actions.add_parser(action, parents=[api], help=text).add_argument("name")
    run = actions.add_parser(
        "run", parents=[api], help="submit one job per symbol and bar size, and follow them"
    )
    run.add_argument("name")
    run.add_argument("--run-id", help="the same id again submits nothing new (idempotent)")
    run.add_argument("--no-follow", action="store_true", help="print the run id and return")
    run.add_argument(
        "--mode",
        choices=("full", "fill_gaps", "top_up"),
        default="full",
        help="every job's mode, e.g. top_up for a daily refresh (default: full)",
    )
    for action, text in (
        ("status", "a run's progress: jobs by status, bars, percent"),
        ("cancel", "cancel every job of a run that has not ended"),
    ):
        parser = actions.add_parser(action, parents=[api], help=text)
        parser.add_argument("name")
        parser.add_argument("run_id")


def _universe(parser: argparse.ArgumentParser, client: ApiClient, args: argparse.Namespace) -> int:
    out, action = sys.stdout, args.universe_command
    if action == "create":
        try:
            options = options_dict(args.options)
        except ValueError as exc:
            parser.error(str(exc))
        return universes.create(
            client,
            args.name,
            source=args.source,
            symbols=args.symbols,
            bar_sizes=args.bar_sizes,
            start=args.start,
            end=args.end,
            options=options,
            description=args.description,
            out=out,
        )
    if action == "list":
        return universes.show_all(client, out)
    if action == "show":
        return universes.show(client, args.name, out)
    if action == "delete":
        return universes.delete(client, args.name, out)
    if action == "run":
        follow = not args.no_follow
        return universes.run(
            client, args.name, args.run_id, follow=follow, out=out, err=sys.stderr, mode=args.mode
        )
    if action == "status":
        return universes.status(client, args.name, args.run_id, out)
    return universes.cancel(client, args.name, args.run_id, out)


def _schedule_parser(commands: Any, api: argparse.ArgumentParser) -> None:
    schedule = commands.add_parser(
        "schedule", help="run a universe (a top-up by default) on a cron schedule"
    )
    actions = schedule.add_subparsers(dest="schedule_command", required=True, metavar="ACTION")
    make = actions.add_parser(
        "create", parents=[api], help="create (or replace) a schedule; needs an admin token"
    )
    make.add_argument("name")
    make.add_argument("--universe", required=True, help="the universe each tick runs")
    make.add_argument(
        "--cron", required=True, help="five fields, e.g. '30 16 * * 1-5': weekdays at 16:30"
    )
    make.add_argument("--timezone", default="UTC", help="IANA zone, e.g. America/New_York")
    make.add_argument(
        "--mode",
        choices=("top_up", "fill_gaps", "full"),
        default="top_up",
        help="every job's mode (default: top_up, what keeps the data current)",
    )
    make.add_argument("--description")
    actions.add_parser("list", parents=[api], help="every schedule, with its next tick")
    for action, text in (
        ("show", "a schedule, its last tick and run"),
        ("pause", "stop its ticks (missed ones are not caught up on resume)"),
        ("resume", "fire its ticks again from now on"),
        ("trigger", "submit its run now"),
        ("delete", "forget a schedule (its runs stay)"),
    ):
        actions.add_parser(action, parents=[api], help=text).add_argument("name")


def _schedule(client: ApiClient, args: argparse.Namespace) -> int:
    out, action = sys.stdout, args.schedule_command
    if action == "create":
        return schedules.create(
            client,
            args.name,
            universe=args.universe,
            cron=args.cron,
            timezone=args.timezone,
            mode=args.mode,
            description=args.description,
            out=out,
        )
    if action == "list":
        return schedules.show_all(client, out)
    named = {
        "show": schedules.show,
        "pause": schedules.pause,
        "resume": schedules.resume,
        "trigger": schedules.trigger,
        "delete": schedules.delete,
    }
    return named[action](client, args.name, out)


def _token(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    url, namespace = redis_url(env), env.get("BACKFILL_REDIS_NAMESPACE", "")
    if args.token_command == "create":
        return tokens.create(url, namespace, args.scope, args.name, sys.stdout)
    if args.token_command == "list":
        return tokens.show(url, namespace, sys.stdout)
    return tokens.revoke(url, namespace, args.name, sys.stdout)


def _submit(parser: argparse.ArgumentParser, client: ApiClient, args: argparse.Namespace) -> int:
    try:
        options = options_dict(args.options)
    except ValueError as exc:
        parser.error(str(exc))
    end = args.end or datetime.now(UTC).date().isoformat()
    # The same symbol twice would be two identical jobs: surely a slip, so it is sent once.
    symbols = list(dict.fromkeys(args.symbols))
    requests = [
        JobRequest(
            args.source, symbol, args.bar_size, args.start, end, options, args.mode, args.force
        )
        for symbol in symbols
    ]
    return submit(client, requests, follow=not args.no_follow, out=sys.stdout, err=sys.stderr)


def _fail(message: str, code: int) -> int:
    sys.stderr.write(f"backfill: {message}\n")
    return code


def _bullets(lines: Sequence[str]) -> str:
    return "\n".join(f"  - {line}" for line in lines)


def _port(text: str) -> int:
    port = _positive(text)
    if port > 65535:
        raise argparse.ArgumentTypeError(f"not a TCP port: {text}")
    return port


def _positive(text: str) -> int:
    value = _whole(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more: {text}")
    return value


def _metrics_base(text: str) -> int:
    base = _whole(text)
    if base > 65535 - 3:  # four consecutive ports
        raise argparse.ArgumentTypeError(f"must leave room for 4 ports below 65536: {text}")
    return base


def _whole(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more: {text}")
    return value
