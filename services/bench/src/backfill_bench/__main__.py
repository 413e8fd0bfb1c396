"""`python -m backfill_bench` (what `backfill bench` runs): benchmark the local stack."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from backfill_bench.runner import main_async
from backfill_bench.sizes import sizes_for

EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="backfill bench",
        description="Start Redis, a fresh PostgreSQL database, the projector, the API and sim"
        " workers; measure the floors and the workloads A1-A7 three times each; print a table,"
        " write JSON and PNG charts.",
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="small sizes for CI (a few minutes)")
    size.add_argument("--full", action="store_true", help="the issue's sizes (the default)")
    parser.add_argument(
        "--database-url",
        help="a PostgreSQL server where the user may create databases (default:"
        " $BACKFILL_BENCH_DATABASE_URL, else $BACKFILL_TEST_POSTGRES_URL)",
    )
    parser.add_argument("--out", default="bench-results", help="default: ./bench-results")
    parser.add_argument("--workers", type=int, help="sim worker processes (default: 2)")
    parser.add_argument("--runs", type=int, help="runs of each workload (default: 3)")
    parser.add_argument(
        "--soak-s", type=float, help="seconds of A7's soak per run (quick: 20, full: 600)"
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="ID",
        help="run only the workloads whose id starts with ID (e.g. --only A3 --only F2);"
        " repeatable; default: all",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    url = (
        args.database_url
        or os.environ.get("BACKFILL_BENCH_DATABASE_URL")
        or os.environ.get("BACKFILL_TEST_POSTGRES_URL")
    )
    if not url:
        print(
            "backfill bench: needs PostgreSQL: pass --database-url or set"
            " BACKFILL_BENCH_DATABASE_URL (postgresql+asyncpg://user:pw@host:5432/postgres)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    sizes = sizes_for(args.quick, soak_s=args.soak_s, workers=args.workers, runs=args.runs)
    mode = "quick" if args.quick else "full"
    return main_async(url, sizes, Path(args.out).resolve(), mode, frozenset(args.only))


if __name__ == "__main__":
    sys.exit(main())
