"""Bars read in batches, in time order, for exports of any size with flat memory.

Keyset paging (`ts > last`, ordered by ts, LIMIT n) walks the bars table's primary key, so every
batch costs the same however deep into the series it starts, and no bar is read twice or
skipped at a batch boundary (ts is unique within a series). Each batch takes a pooled connection
for its one query only: a slow reader of a long export never holds a connection meanwhile.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from backfill_readmodel.queries import BarQuery
from backfill_readmodel.tables import SERIES_ID_SQL, bar_rows, series_id_of

# The canonical columns of an export, in order, whatever the source (adj_close: Yahoo only).
BAR_COLUMNS = ("ts", "open", "high", "low", "close", "volume", "adj_close")
DEFAULT_BATCH_SIZE = 10_000

BarRow = tuple[datetime, float, float, float, float, float, float | None]


async def bar_batches(
    engine: AsyncEngine, q: BarQuery, batch_size: int = DEFAULT_BATCH_SIZE
) -> AsyncIterator[Sequence[BarRow]]:
    """Non-empty batches of at most `batch_size` rows (BAR_COLUMNS), oldest first."""
    if batch_size < 1:
        raise ValueError("batch_size is at least 1")
    after, inclusive = q.start, True  # the first batch from `start` on, the next ones after
    while True:
        async with engine.connect() as conn:
            if conn.dialect.driver == "asyncpg":
                rows = await _asyncpg_page(conn, q, after, inclusive, batch_size)
            else:
                rows = await _page(conn, q, after, inclusive, batch_size)
        if rows:
            yield rows
        if len(rows) < batch_size:
            return
        after, inclusive = rows[-1][0], False


async def _page(
    conn: AsyncConnection, q: BarQuery, after: datetime | None, inclusive: bool, limit: int
) -> Sequence[BarRow]:
    query = select(*(bar_rows.c[name] for name in BAR_COLUMNS)).where(
        bar_rows.c.series_id == series_id_of(q.source, q.symbol, q.bar_size, q.price_type)
    )
    if q.end is not None:
        query = query.where(bar_rows.c.ts < q.end)
    if after is not None:
        query = query.where(bar_rows.c.ts >= after if inclusive else bar_rows.c.ts > after)
    result = await conn.execute(query.order_by(bar_rows.c.ts).limit(limit))
    return [tuple(row) for row in result]


# PostgreSQL's own range: the bounds a query without `start` or `end` compares with.
PG_MIN = datetime(1, 1, 1, tzinfo=UTC)
PG_MAX = datetime(9999, 12, 31, tzinfo=UTC)
_PG_PAGE = (
    "SELECT ts, open, high, low, close, volume, adj_close FROM bar_rows"
    f" WHERE series_id = ({SERIES_ID_SQL})"
    " AND ts {op} $5 AND ts < $6 ORDER BY ts LIMIT $7"
)


async def _asyncpg_page(
    conn: AsyncConnection, q: BarQuery, after: datetime | None, inclusive: bool, limit: int
) -> Sequence[BarRow]:
    """The same page straight from asyncpg: on a long export SQLAlchemy's per-row work (rows,
    the UTC column type) costs more than the query. asyncpg already returns aware UTC times."""
    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection
    sql = _PG_PAGE.format(op=">=" if inclusive else ">")
    return await driver.fetch(  # type: ignore[no-any-return]
        sql,
        q.source,
        q.symbol,
        q.bar_size,
        q.price_type,
        after or PG_MIN,
        q.end or PG_MAX,
        limit,
    )
