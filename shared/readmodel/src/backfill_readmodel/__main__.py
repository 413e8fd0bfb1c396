"""`python -m backfill_readmodel upgrade`: bring the database schema to the latest revision."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from backfill_bus.logs import configure_logging
from backfill_readmodel.engine import create_engine
from backfill_readmodel.migrate import DatabaseUnavailableError, upgrade, wait_for_database
from backfill_readmodel.settings import DatabaseSettings

log = logging.getLogger("backfill.migrate")
# Long enough for a PostgreSQL container's first start; compose starts migrate once it is
# healthy, so this only covers a race at boot.
DEFAULT_WAIT_S = 60.0


async def _upgrade(url: str, wait_s: float) -> None:
    engine = create_engine(url)
    try:
        await wait_for_database(engine, wait_s)
        await upgrade(engine)
    finally:
        await engine.dispose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="backfill-readmodel")
    parser.add_argument(
        "command", choices=["upgrade"], help="upgrade: migrate to the latest schema"
    )
    parser.add_argument(
        "--wait",
        type=float,
        default=DEFAULT_WAIT_S,
        metavar="SECONDS",
        help=f"how long to retry connecting before giving up (default {DEFAULT_WAIT_S:g})",
    )
    args = parser.parse_args(argv)
    configure_logging("migrate")
    settings = DatabaseSettings()
    try:
        asyncio.run(_upgrade(settings.database_url, args.wait))
    except DatabaseUnavailableError as error:  # a clear line, not a traceback
        log.error("schema not migrated: %s", error)
        sys.exit(1)
    log.info("database schema is up to date")


if __name__ == "__main__":
    main()
