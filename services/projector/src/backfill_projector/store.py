"""Reading and writing projection rows; with `pg_tables`, the only place the projector speaks SQL.

A batch reaches the tables through `Tables`: the few statements it needs, on one connection
inside the caller's transaction. `SqlTables` runs them through SQLAlchemy (SQLite, and every
call given an `AsyncConnection`); `pg_tables.PgTables` runs the same statements straight on
asyncpg, for the live projector on PostgreSQL. What a batch writes, and in which order, is
decided once, here (`load`, `save`, `write_position`).
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import fields
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Table, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from backfill_projector.rows import TERMINAL_STATUSES, BarBlock, Changes, ChunkRow, JobRow
from backfill_readmodel.tables import (
    SERIES_ID_SQL,
    bar_rows,
    corporate_actions,
    job_chunks,
    job_events,
    jobs,
    projector_positions,
    series,
    workers,
)

_JOB_FIELDS = [f.name for f in fields(JobRow)]
_CHUNK_FIELDS = [f.name for f in fields(ChunkRow)]
# Keep each statement under SQLite's and asyncpg's bound-parameter limits.
_ROWS_PER_STATEMENT = 2000


def parse_entry_id(entry_id: str) -> tuple[int, int]:
    millis, _, counter = entry_id.partition("-")
    return int(millis), int(counter or 0)


class Tables(Protocol):
    """The statements a batch runs, on one connection, inside the caller's transaction."""

    async def read_position(self, stream: str) -> tuple[str | None, str | None]:
        """The position and its token, locked until the transaction ends (see read_position)."""
        ...

    async def rows_where(
        self, table: Table, column: str, values: Collection[str]
    ) -> Sequence[Mapping[Any, Any]]:
        """The rows of `table` whose `column` is one of `values`."""
        ...

    async def upsert(
        self, table: Table, rows: Sequence[dict[str, Any]], key: list[str]
    ) -> None: ...

    async def insert_ignore(
        self, table: Table, rows: Sequence[dict[str, Any]], key: list[str]
    ) -> None: ...

    async def write_bars(self, blocks: list[BarBlock]) -> None: ...

    async def delete_finished(self, before: datetime) -> None: ...


class SqlTables:
    """`Tables` through SQLAlchemy, on any backend."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def read_position(self, stream: str) -> tuple[str | None, str | None]:
        return await read_position(self.conn, stream)

    async def rows_where(
        self, table: Table, column: str, values: Collection[str]
    ) -> Sequence[Mapping[Any, Any]]:
        result = await self.conn.execute(select(table).where(table.c[column].in_(values)))
        return result.mappings().all()

    async def upsert(self, table: Table, rows: Sequence[dict[str, Any]], key: list[str]) -> None:
        await upsert(self.conn, table, rows, key)

    async def insert_ignore(
        self, table: Table, rows: Sequence[dict[str, Any]], key: list[str]
    ) -> None:
        await insert_ignore(self.conn, table, rows, key)

    async def write_bars(self, blocks: list[BarBlock]) -> None:
        await write_bars(self.conn, blocks)

    async def delete_finished(self, before: datetime) -> None:
        await delete_finished(self.conn, before)


async def read_position(conn: AsyncConnection, stream: str) -> tuple[str | None, str | None]:
    """The position and the token its commit wrote with it (None, None before any)."""
    positions = projector_positions
    query = select(positions.c.last_id, positions.c.written_by).where(positions.c.stream == stream)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()  # a rebuild and the live projector never interleave
    row = (await conn.execute(query)).first()
    return (None, None) if row is None else (row[0], row[1])


async def committed_position(conn: AsyncConnection, stream: str) -> str | None:
    """The position as committed, read without a lock (for trimming, never for folding)."""
    query = select(projector_positions.c.last_id).where(projector_positions.c.stream == stream)
    return (await conn.execute(query)).scalar_one_or_none()


async def write_position(tables: Tables, stream: str, last_id: str, token: str) -> None:
    row = {"stream": stream, "last_id": last_id, "written_by": token}
    await tables.upsert(projector_positions, [row], ["stream"])


async def load(tables: Tables, changes: Changes, job_ids: set[str], worker_ids: set[str]) -> None:
    """Bring the rows a batch touches into memory."""
    found: set[str] = set()
    if job_ids:
        for row in await tables.rows_where(jobs, "job_id", job_ids):
            changes.jobs[row["job_id"]] = JobRow(**{name: row[name] for name in _JOB_FIELDS})
            found.add(row["job_id"])
    if found:  # chunks exist only for jobs that do: a batch of new jobs reads once
        for row in await tables.rows_where(job_chunks, "job_id", found):
            chunk = ChunkRow(**{name: row[name] for name in _CHUNK_FIELDS})
            changes.chunks[(chunk.job_id, chunk.chunk)] = chunk
    if worker_ids:
        for row in await tables.rows_where(workers, "worker_id", worker_ids):
            changes.workers[row["worker_id"]] = dict(row)


async def save(tables: Tables, changes: Changes) -> None:
    job_rows = [_values(changes.jobs[j]) for j in sorted(changes.dirty_jobs)]
    await tables.upsert(jobs, job_rows, ["job_id"])
    chunk_rows = [_values(changes.chunks[key]) for key in sorted(changes.dirty_chunks)]
    await tables.upsert(job_chunks, chunk_rows, ["job_id", "chunk"])
    await tables.insert_ignore(job_events, changes.job_events, ["event_id"])
    await tables.write_bars(changes.bars)
    actions = {(a["source"], a["symbol"], a["ts"], a["kind"]): a for a in changes.actions}
    key = [c.name for c in corporate_actions.primary_key]
    await tables.upsert(corporate_actions, list(actions.values()), key)
    await tables.upsert(workers, list(changes.workers.values()), ["worker_id"])
    if changes.cleanup_before is not None:
        await tables.delete_finished(changes.cleanup_before)


def _values(row: JobRow | ChunkRow) -> dict[str, Any]:
    """A row's columns, shallowly: `dataclasses.asdict` deep-copied every value (a job's
    options too) for a statement that only reads them."""
    names = _JOB_FIELDS if isinstance(row, JobRow) else _CHUNK_FIELDS
    return {name: getattr(row, name) for name in names}


async def delete_finished(conn: AsyncConnection, before: datetime) -> None:
    """Delete the jobs that ended before `before`, with their chunks and history, and the
    workers not heard from since. Bars are never deleted: they are the product."""
    finished = (jobs.c.status.in_(TERMINAL_STATUSES)) & (jobs.c.finished_at < before)
    finished_ids = select(jobs.c.job_id).where(finished)
    await conn.execute(job_events.delete().where(job_events.c.job_id.in_(finished_ids)))
    await conn.execute(job_chunks.delete().where(job_chunks.c.job_id.in_(finished_ids)))
    await conn.execute(jobs.delete().where(finished))
    await conn.execute(workers.delete().where(workers.c.last_heartbeat < before))


async def delete_projections(conn: AsyncConnection) -> None:
    """Empty every table a rebuild refills. Bars are kept: refolded chunks upsert the same
    values, and bars whose events were trimmed from the log stay."""
    for table in (job_events, job_chunks, jobs, workers, projector_positions):
        await conn.execute(table.delete())


async def write_bars(conn: AsyncConnection, blocks: list[BarBlock]) -> None:
    """Upsert bars on their natural key, in log order: a later block's bar wins.

    On PostgreSQL each block is one statement (its series row too, when new), taking the block's
    columns as arrays (`unnest`), pipelined for the whole batch: no Python object and no
    statement per bar, which made bar ingest the projector's bottleneck (issue #9's profile).
    Blocks run in order in one transaction, so a bar repeated in a later block (a retried
    chunk) simply updates the earlier one.
    """
    if not blocks:
        return
    if conn.dialect.name == "postgresql":
        await conn.exec_driver_sql(UPSERT_BLOCK_SQL, [block_params(block) for block in blocks])
        return
    named = {(b.source, b.symbol, b.bar_size, b.price_type) for b in blocks}
    ids = await _series_ids(conn, named)
    latest: dict[tuple[int, datetime], dict[str, Any]] = {}
    for block in blocks:
        series_id = ids[(block.source, block.symbol, block.bar_size, block.price_type)]
        for row in block.rows():
            values = {name: row[name] for name in _BAR_VALUES}
            # One row per natural key (the latest): one statement may not upsert a key twice.
            latest[(series_id, row["ts"])] = {"series_id": series_id, "ts": row["ts"], **values}
    await upsert(conn, bar_rows, list(latest.values()), ["series_id", "ts"])


async def _series_ids(
    conn: AsyncConnection, named: set[tuple[str, str, str, str]]
) -> dict[tuple[str, str, str, str], int]:
    """The ids of these series, added when new (the SQLite path)."""
    keys = ["source", "symbol", "bar_size", "price_type"]
    await insert_ignore(conn, series, [dict(zip(keys, n, strict=True)) for n in named], keys)
    query = select(series.c.id, *(series.c[k] for k in keys)).where(
        tuple_(*(series.c[k] for k in keys)).in_(list(named))
    )
    return {tuple(row[1:]): row[0] for row in await conn.execute(query)}


def block_params(block: BarBlock) -> tuple[Any, ...]:
    b = block.bars
    n = len(b.ts)
    # One two-dimensional array for every column (ts too: epoch seconds are exact in a float8).
    # asyncpg checks each element of an array against collections.abc.Iterable, a slow ABC
    # check, but of a nested array only the first row's elements. Client CPU per 390-bar block
    # went from 0.40 to 0.13 ms; the check was 14 % of the projector's samples in issue #9's A3.
    columns: list[list[Any]] = [b.ts, b.open, b.high, b.low, b.close, b.volume]
    columns.append(b.adj_close or [None] * n)
    if not all(map(operator.lt, b.ts, b.ts[1:])):
        columns = _in_time_order(columns)
    return (
        block.source,
        block.symbol,
        block.bar_size,
        block.price_type,
        columns,
        columns[0][0] if n else 0,
        columns[0][-1] if n else 0,
    )


def _in_time_order(columns: list[list[Any]]) -> list[list[Any]]:
    """The bars by time, one per time: the block's last for a time it repeats.

    The statement needs its rows ordered and unique (an upsert may not touch a row twice).
    Sources send them so; the rare block that is not is put right here, which spared PostgreSQL
    a sort (DISTINCT ON) of every block: 0.08-0.14 ms of its 1.1 per 390-bar block.
    """
    last = {ts: index for index, ts in enumerate(columns[0])}
    order = [last[ts] for ts in sorted(last)]
    return [[column[index] for index in order] for column in columns]


_BAR_VALUES = ("open", "high", "low", "close", "volume", "adj_close")
_COLUMNS = f"series_id, ts, {', '.join(_BAR_VALUES)}"
# The block's rows, in the order block_params put them: by time, one per time.
_BLOCK_ROWS = f"""
SELECT (SELECT id FROM named), to_timestamp(b.ts), {", ".join("b." + v for v in _BAR_VALUES)}
FROM unnest(
    ($5::float8[])[1:1], ($5::float8[])[2:2], ($5::float8[])[3:3], ($5::float8[])[4:4],
    ($5::float8[])[5:5], ($5::float8[])[6:6], ($5::float8[])[7:7]
) AS b(ts, {", ".join(_BAR_VALUES)})"""
# The block's series: its row if there is one, else a new one. The INSERT only runs when the
# lookup found nothing, since ON CONFLICT alone would draw (and waste) an id from the sequence
# for every block.
_SERIES = f"""
found AS (
    {SERIES_ID_SQL}
), added AS (
    INSERT INTO series (source, symbol, bar_size, price_type)
    SELECT $1, $2, $3, $4 WHERE NOT EXISTS (SELECT 1 FROM found)
    ON CONFLICT (source, symbol, bar_size, price_type) DO NOTHING
    RETURNING id
), named AS (
    SELECT id FROM found UNION ALL SELECT id FROM added
)"""
# A block whose series holds no bar between its first and last time (a range collected for the
# first time: the usual case) is a plain INSERT; otherwise an upsert, whose WHERE makes a
# replayed chunk rewrite nothing (no dead tuples, no WAL). ON CONFLICT's speculative insertion
# cost PostgreSQL half again a plain INSERT's time (2.64 vs 1.74 ms per 390-bar block, 500k-row
# table). Safe because the projector is the only writer of bars, and one at a time (the
# position's row lock): nothing inserts into the range between the look and the INSERT.
UPSERT_BLOCK_SQL = f"""
WITH {_SERIES.strip()}, present AS (
    SELECT EXISTS (
        SELECT 1 FROM bar_rows
        WHERE series_id = (SELECT id FROM named)
            AND ts BETWEEN to_timestamp($6) AND to_timestamp($7)
    ) AS stored
), fresh AS (
    INSERT INTO bar_rows ({_COLUMNS}){_BLOCK_ROWS}
    WHERE NOT (SELECT stored FROM present)
)
INSERT INTO bar_rows ({_COLUMNS}){_BLOCK_ROWS}
WHERE (SELECT stored FROM present)
ON CONFLICT (series_id, ts) DO UPDATE SET
    {", ".join(f"{v} = EXCLUDED.{v}" for v in _BAR_VALUES)}
WHERE ({", ".join("bar_rows." + v for v in _BAR_VALUES)})
    IS DISTINCT FROM ({", ".join("EXCLUDED." + v for v in _BAR_VALUES)})
"""


@functools.cache
def _upsert_statement(dialect: str, table: Table, key: tuple[str, ...]) -> Any:
    """Built once per table: constructing `excluded` and its column proxies on every batch was
    a visible share of a small batch's time (the projector's latency, issue #9's A4)."""
    statement = (postgresql if dialect == "postgresql" else sqlite).insert(table)
    updates = {c.name: statement.excluded[c.name] for c in table.columns if c.name not in key}
    return statement.on_conflict_do_update(index_elements=list(key), set_=updates)


@functools.cache
def _insert_ignore_statement(dialect: str, table: Table, key: tuple[str, ...]) -> Any:
    statement = (postgresql if dialect == "postgresql" else sqlite).insert(table)
    return statement.on_conflict_do_nothing(index_elements=list(key))


async def upsert(
    conn: AsyncConnection, table: Table, rows: Sequence[dict[str, Any]], key: list[str]
) -> None:
    for batch in _batches(rows, table):
        await conn.execute(_upsert_statement(conn.dialect.name, table, tuple(key)), batch)


async def insert_ignore(
    conn: AsyncConnection, table: Table, rows: Sequence[dict[str, Any]], key: list[str]
) -> None:
    for batch in _batches(rows, table):
        await conn.execute(_insert_ignore_statement(conn.dialect.name, table, tuple(key)), batch)


def _batches(rows: Sequence[dict[str, Any]], table: Table) -> Iterable[list[dict[str, Any]]]:
    size = max(1, _ROWS_PER_STATEMENT // max(1, len(table.columns)))
    for start in range(0, len(rows), size):
        yield list(rows[start : start + size])
