"""Jobs by series: one index probe for what a series' earlier jobs covered, with or without
statistics

Every `full` job asks, before it starts, whether any earlier job's chunk could count toward its
series (`coverage.store.anything_known`); fill_gaps and top_up jobs read those chunks. 0007 let
PostgreSQL answer `instrument = S OR (instrument IS NULL AND symbol = S)` with a BitmapOr, once
it had statistics. On a table without them yet (a new database, a burst of jobs before
autovacuum's first ANALYZE) it walked the source's index instead and filtered every job of the
source: 0.3 ms at 1,000 jobs, 0.61 ms per look on average over issue #9's A2, growing with the
table. The query now matches `coalesce(instrument, symbol) = S` (the same rows: the instrument
when there is one, else the symbol), and this index holds that with the rest of the series.

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_jobs_series",
        "jobs",
        [sa.text("coalesce(instrument, symbol)"), "source", "bar_size", "price_type"],
    )
    op.drop_index("ix_jobs_instrument", table_name="jobs")


def downgrade() -> None:
    op.create_index("ix_jobs_instrument", "jobs", ["instrument"])
    op.drop_index("ix_jobs_series", table_name="jobs")
