"""The Celery app that the bench's reference workloads (C1, C2) run: one job as Celery does it.

What a minimal Celery collector does for one job: build its bars (the sim's own code, at zero
latency, the same 390 bars a sim worker builds), upsert them into PostgreSQL in one statement,
and return; Celery keeps the state (results in Redis). No progress events, no job table, no
cancel or ownership checks, no exactly-once: what Celery itself costs on this machine, for the
issue's "Celery 5 + Redis, same machine, same method" column.

The worker gets its broker and result backend on the command line (`celery --broker ...`) and
its database from BACKFILL_BENCH_CELERY_DSN, read when each pool process starts.
"""

from __future__ import annotations

import asyncio
import os
import time
from datetime import datetime
from typing import Any

import asyncpg
from celery import Celery
from celery.signals import worker_process_init

from backfill_contracts import BarSize
from backfill_sim.prices import sim_bars

DSN_ENV = "BACKFILL_BENCH_CELERY_DSN"
COLLECT = "backfill_bench.collect"
BARS_TABLE = "celery_bars"
CREATE_TABLE = (
    f"CREATE TABLE IF NOT EXISTS {BARS_TABLE} (symbol text NOT NULL, ts bigint NOT NULL,"
    " open float8, high float8, low float8, close float8, volume float8,"
    " PRIMARY KEY (symbol, ts))"
)
_UPSERT = (
    f"INSERT INTO {BARS_TABLE} (symbol, ts, open, high, low, close, volume)"
    " SELECT $1, * FROM unnest($2::bigint[], $3::float8[], $4::float8[], $5::float8[],"
    " $6::float8[], $7::float8[])"
    " ON CONFLICT (symbol, ts) DO UPDATE SET open = excluded.open, high = excluded.high,"
    " low = excluded.low, close = excluded.close, volume = excluded.volume"
)

app = Celery("backfill_bench", set_as_current=False)


class _Database:
    """Each pool process's own connection, driven by its own event loop (tasks are sync)."""

    loop: asyncio.AbstractEventLoop | None = None
    conn: asyncpg.Connection | None = None

    @classmethod
    def open(cls) -> None:
        cls.loop = asyncio.new_event_loop()
        cls.conn = cls.loop.run_until_complete(asyncpg.connect(os.environ[DSN_ENV]))

    @classmethod
    def run(cls, statement: str, *args: Any) -> None:
        if cls.loop is None or cls.conn is None:
            raise RuntimeError("the pool process has no database: worker_process_init did not run")
        cls.loop.run_until_complete(cls.conn.execute(statement, *args))


def _connect(**_: Any) -> None:
    _Database.open()


def collect(symbol: str, start: str, end: str) -> dict[str, Any]:
    """One job of 1-minute bars; returns when it started (epoch seconds) and its bar count."""
    started = time.time()
    bars = sim_bars(symbol, BarSize.M1, datetime.fromisoformat(start), datetime.fromisoformat(end))
    _Database.run(_UPSERT, symbol, bars.ts, bars.open, bars.high, bars.low, bars.close, bars.volume)
    return {"started": started, "bars": len(bars.ts)}


# Registered by calls, not decorators, so that the functions keep their types (celery has none).
worker_process_init.connect(_connect)
app.task(name=COLLECT)(collect)
