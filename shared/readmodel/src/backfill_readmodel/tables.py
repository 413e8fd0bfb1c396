"""The projections: tables the projector writes and the API and console read.

Every row is a pure function of the event log, so rebuilding from the log gives identical tables:
no server-side defaults, no clocks, only values carried by events.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    ColumnElement,
    Float,
    Index,
    Integer,
    MetaData,
    ScalarSelect,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    select,
)

from backfill_readmodel.types import UtcDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
    }
)

jobs = Table(
    "jobs",
    metadata,
    Column("job_id", String(64), primary_key=True),
    Column("source", String(32), nullable=False),
    Column("symbol", String(32), nullable=False),
    Column("bar_size", String(8), nullable=False),
    Column("start", UtcDateTime, nullable=False),
    Column("end", UtcDateTime, nullable=False),
    Column("options", JSON, nullable=False),
    Column("idempotency_key", String(200)),
    Column("status", String(16), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("price_type", String(32)),
    Column("worker_id", String(200)),
    Column("chunks_total", Integer, nullable=False),
    Column("chunks_done", Integer, nullable=False),
    Column("bars_stored", BigInteger, nullable=False),
    Column("error_outcome", String(32)),
    Column("error_message", Text),
    Column("submitted_at", UtcDateTime, nullable=False),
    Column("started_at", UtcDateTime),
    Column("finished_at", UtcDateTime),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("last_seq", Integer, nullable=False),
    Column("instrument", String(64)),
    Column("note", Text),
    # The request that asked for the job (X-Correlation-ID, or a command's correlation_id).
    Column("correlation_id", String(200)),
    # The universe run that fanned the job out (POST /universes/{name}/runs), if one did.
    Column("universe", String(64)),
    Column("universe_run", String(64)),
    Index(None, "submitted_at", "job_id"),
    Index(None, "status", "submitted_at"),
    Index(None, "source", "submitted_at"),
    Index(None, "symbol", "submitted_at"),
    Index(None, "universe", "universe_run"),
)


def series_symbol_of_job() -> ColumnElement[str]:
    """The symbol of the series a job filled: its instrument (a future's local symbol), else
    its symbol; the expression ix_jobs_series indexes."""
    return func.coalesce(jobs.c.instrument, jobs.c.symbol)


# What a series' earlier jobs covered (coverage.store), found in one probe: see 0010.
Index("ix_jobs_series", series_symbol_of_job(), jobs.c.source, jobs.c.bar_size, jobs.c.price_type)


job_chunks = Table(
    "job_chunks",
    metadata,
    Column("job_id", String(64), primary_key=True),
    Column("chunk", Integer, primary_key=True),
    Column("start", UtcDateTime, nullable=False),
    Column("end", UtcDateTime, nullable=False),
    # planned, done, no_data, retrying, failed
    Column("status", String(16), nullable=False),
    Column("bars", Integer, nullable=False),
    Column("tries", Integer, nullable=False),
    Column("outcome", String(32)),
    Column("message", Text),
    Column("last_seq", Integer, nullable=False),
)

job_events = Table(
    "job_events",
    metadata,
    # The stream entry id ("<ms>-<n>"): unique, ordered, and the same on every replay.
    Column("event_id", String(40), primary_key=True),
    Column("job_id", String(64), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("type", String(32), nullable=False),
    Column("ts", UtcDateTime, nullable=False),
    Column("producer", String(200), nullable=False),
    Column("data", JSON, nullable=False),
    Index(None, "job_id", "seq"),
    Index(None, "type", "ts"),  # the console's throughput and "bars today"
)


def _bar_values() -> list[Column[Any]]:
    """A bar's values, the same in the table and the view (new objects: a column has one table)."""
    return [
        *(Column(name, Float, nullable=False) for name in ("open", "high", "low", "close")),
        Column("volume", Float, nullable=False),
        Column("adj_close", Float),  # close adjusted for splits and dividends, where given
    ]


# A bar series: what one source gives for one instrument, bar size and price type. Bars name
# their series by this small id, not by the four strings: the bars' primary key is then 12 bytes
# wide instead of ~40, and PostgreSQL inserts a 390-bar block in 1.15 ms instead of 2.3 ms
# (issue #9: inserting bars was the projector's largest cost). Series are never deleted.
series = Table(
    "series",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", String(32), nullable=False),
    Column("symbol", String(32), nullable=False),
    Column("bar_size", String(8), nullable=False),
    Column("price_type", String(32), nullable=False),
    UniqueConstraint("source", "symbol", "bar_size", "price_type"),
)

# The bars. The natural key is (series, ts): at-least-once delivery becomes exactly-once rows by
# upserting on it. No foreign key: the projector writes a block's series row in the same
# statement as the block, and a per-row check would cost the inserts what the narrow key saved.
# The `bars` view (migration 0008) joins the series back for SQL written against the old table;
# the code reads `bar_rows` by `series_id_of`, which keeps its scans in primary-key order.
bar_rows = Table(
    "bar_rows",
    metadata,
    Column("series_id", Integer, primary_key=True, autoincrement=False),
    Column("ts", UtcDateTime, primary_key=True),
    *_bar_values(),
)


# The `bars` view, as a table to select from: each bar with its series' four names, as the
# table was before migration 0008. For reading a few bars and for SQL written against the old
# table; not in `metadata` (migrations create it). Scans in time order use `bar_rows` (see
# series_id_of), and nothing can insert into it.
view_metadata = MetaData()
bars = Table(
    "bars",
    view_metadata,
    Column("source", String(32), primary_key=True),
    Column("symbol", String(32), primary_key=True),
    Column("bar_size", String(8), primary_key=True),
    Column("price_type", String(32), primary_key=True),
    Column("ts", UtcDateTime, primary_key=True),
    *_bar_values(),
)


# `series_id_of` for raw SQL, its four names bound to $1-$4 (asyncpg's placeholders).
SERIES_ID_SQL = (
    "SELECT id FROM series WHERE source = $1 AND symbol = $2 AND bar_size = $3 AND price_type = $4"
)


def series_id_of(source: Any, symbol: Any, bar_size: Any, price_type: Any) -> ScalarSelect[Any]:
    """The series' id as a scalar subquery (values or bind parameters).

    `bar_rows.c.series_id == series_id_of(...)` is one index probe run once (an InitPlan), then
    a range scan of the bars' primary key, already in time order. Joining `series` instead
    made PostgreSQL sort every matching bar before a LIMIT (24 ms against 2.6 ms per 10,000).
    """
    return (
        select(series.c.id)
        .where(
            series.c.source == source,
            series.c.symbol == symbol,
            series.c.bar_size == bar_size,
            series.c.price_type == price_type,
        )
        .scalar_subquery()
    )


corporate_actions = Table(
    "corporate_actions",
    metadata,
    Column("source", String(32), primary_key=True),
    Column("symbol", String(32), primary_key=True),
    Column("ts", UtcDateTime, primary_key=True),
    Column("kind", String(16), primary_key=True),  # dividend, split
    Column("value", Float, nullable=False),
)

workers = Table(
    "workers",
    metadata,
    Column("worker_id", String(200), primary_key=True),
    Column("source", String(32), nullable=False),
    Column("host", String(200), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("state", String(16), nullable=False),
    Column("current_job", String(64)),
    Column("started_at", UtcDateTime, nullable=False),
    Column("last_heartbeat", UtcDateTime, nullable=False),
    Column("info", JSON, nullable=False),
)

projector_positions = Table(
    "projector_positions",
    metadata,
    Column("stream", String(200), primary_key=True),
    # The last event folded into the tables, committed in the same transaction as its rows.
    Column("last_id", String(40), nullable=False),
    # A token fresh with each commit of the projector: while the position and this are still
    # the ones it wrote, nobody else wrote the tables, and the rows it remembers hold.
    Column("written_by", String(40)),
)
