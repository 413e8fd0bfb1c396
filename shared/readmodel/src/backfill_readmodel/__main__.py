"""`python -m backfill_readmodel upgrade`: bring the database schema to the latest revision."""

from __future__ import annotations

import argparse
import asyncio
import logging

from backfill_bus.logs import configure_logging
from backfill_readmodel.engine import create_engine
from backfill_readmodel.migrate import upgrade
from backfill_readmodel.settings import DatabaseSettings


async def _upgrade(url: str) -> None:
    engine = create_engine(url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(prog="backfill-readmodel")
    parser.add_argument(
        "command", choices=["upgrade"], help="upgrade: migrate to the latest schema"
    )
    parser.parse_args()
    configure_logging("migrate")
    settings = DatabaseSettings()
    asyncio.run(_upgrade(settings.database_url))
    logging.getLogger("backfill.migrate").info("database schema is up to date")


if __name__ == "__main__":
    main()
