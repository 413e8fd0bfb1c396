"""`store.Tables` straight on asyncpg: the live projector's statements on PostgreSQL.

A batch of one event (a heartbeat) cost the projector 2.35 ms of CPU through SQLAlchemy, most of
it SQLAlchemy's own work around each of the batch's statements, and 1.55 ms here (1.05 ms on the
connection `Projector` holds): in issue #9's A4 the projector's time per batch decides how long
an event waits behind the one before it. The statements are built once from the tables'
definitions and run as prepared statements, with `executemany` (one round trip) for the rows of
each table.

Values go in as `store` hands them over, converted as the columns' SQLAlchemy types would: JSON
serialized (the engine registered a codec on the connection that takes JSON as text, and gives
it back parsed), UTC datetimes checked aware and moved to UTC. Rows come back as asyncpg
`Record`s, which read like SQLAlchemy's mappings; timestamptz values come back aware in UTC.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
from sqlalchemy import JSON, Table

from backfill_projector.rows import TERMINAL_STATUSES, BarBlock
from backfill_projector.store import UPSERT_BLOCK_SQL, block_params
from backfill_readmodel.types import UtcDateTime

Convert = Callable[[Any], Any]


class PgTables:
    """`store.Tables` on an asyncpg connection, inside a transaction the caller opened."""

    def __init__(self, driver: asyncpg.Connection) -> None:
        self.driver = driver

    async def read_position(self, stream: str) -> tuple[str | None, str | None]:
        # FOR UPDATE: a rebuild and the live projector never interleave (see store).
        row = await self.driver.fetchrow(_POSITION_SQL, stream)
        return (None, None) if row is None else (row[0], row[1])

    async def rows_where(
        self, table: Table, column: str, values: Collection[str]
    ) -> Sequence[Mapping[Any, Any]]:
        rows: list[asyncpg.Record] = await self.driver.fetch(
            _rows_where_sql(table, column), list(values)
        )
        return rows

    async def upsert(self, table: Table, rows: Sequence[dict[str, Any]], key: list[str]) -> None:
        await self._write(_insert_sql(table, tuple(key), update=True), table, rows)

    async def insert_ignore(
        self, table: Table, rows: Sequence[dict[str, Any]], key: list[str]
    ) -> None:
        await self._write(_insert_sql(table, tuple(key), update=False), table, rows)

    async def write_bars(self, blocks: list[BarBlock]) -> None:
        if blocks:
            await self.driver.executemany(UPSERT_BLOCK_SQL, [block_params(b) for b in blocks])

    async def delete_finished(self, before: datetime) -> None:
        """As `store.delete_finished`: the jobs ended before `before`, with their chunks and
        history, and the workers not heard from since."""
        before = _utc(before)
        statuses = sorted(TERMINAL_STATUSES)
        for sql in _DELETE_FINISHED:
            await self.driver.execute(sql, statuses, before)
        await self.driver.execute(_DELETE_SILENT_WORKERS, before)

    async def _write(self, sql: str, table: Table, rows: Sequence[dict[str, Any]]) -> None:
        if not rows:
            return
        columns = _columns(table)
        args = [[_value(row, name, convert) for name, convert in columns] for row in rows]
        await self.driver.executemany(sql, args)


def _value(row: dict[str, Any], name: str, convert: Convert | None) -> Any:
    value = row[name]
    return value if convert is None or value is None else convert(value)


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:  # as UtcDateTime: a naive value is a bug upstream, never guessed
        raise ValueError(f"naive datetime {value!r} given to a UTC column")
    return value.astimezone(UTC)


@functools.cache
def _columns(table: Table) -> tuple[tuple[str, Convert | None], ...]:
    """Each column's name and what its SQLAlchemy type would do to a value bound to it."""
    out: list[tuple[str, Convert | None]] = []
    for column in table.columns:
        convert: Convert | None = None
        if isinstance(column.type, UtcDateTime):
            convert = _utc
        elif isinstance(column.type, JSON):
            convert = json.dumps
        out.append((column.name, convert))
    return tuple(out)


def _quote(name: str) -> str:
    """Every column quoted: some are keywords (`end`). Tables are plain lower-case names."""
    return '"' + name.replace('"', '""') + '"'


@functools.cache
def _insert_sql(table: Table, key: tuple[str, ...], *, update: bool) -> str:
    """One row's INSERT, every column bound in the table's order; on a key already there, the
    other columns are updated (`update`) or the row is left alone, as store.upsert and
    store.insert_ignore do."""
    names = [name for name, _ in _columns(table)]
    listed = ", ".join(_quote(n) for n in names)
    params = ", ".join(f"${n}" for n in range(1, len(names) + 1))
    conflict = ", ".join(_quote(k) for k in key)
    others = [n for n in names if n not in key]
    if update and others:
        sets = ", ".join(f"{_quote(n)} = EXCLUDED.{_quote(n)}" for n in others)
        action = f"DO UPDATE SET {sets}"
    else:
        action = "DO NOTHING"
    return (
        f"INSERT INTO {table.name} ({listed}) VALUES ({params}) ON CONFLICT ({conflict}) {action}"
    )


@functools.cache
def _rows_where_sql(table: Table, column: str) -> str:
    listed = ", ".join(_quote(name) for name, _ in _columns(table))
    return f"SELECT {listed} FROM {table.name} WHERE {_quote(column)} = ANY($1::text[])"


_POSITION_SQL = "SELECT last_id, written_by FROM projector_positions WHERE stream = $1 FOR UPDATE"
_FINISHED_IDS = "SELECT job_id FROM jobs WHERE status = ANY($1::text[]) AND finished_at < $2"
_DELETE_FINISHED = (
    f"DELETE FROM job_events WHERE job_id IN ({_FINISHED_IDS})",
    f"DELETE FROM job_chunks WHERE job_id IN ({_FINISHED_IDS})",
    "DELETE FROM jobs WHERE status = ANY($1::text[]) AND finished_at < $2",
)
_DELETE_SILENT_WORKERS = "DELETE FROM workers WHERE last_heartbeat < $1"
