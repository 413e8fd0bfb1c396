"""Jobs by instrument: what a series' earlier jobs covered, found without scanning every job

Every `full` job asks, before it starts, whether any earlier job's chunk could count toward its
series (`coverage.store.anything_known`), and fill_gaps and top_up jobs read those chunks
(`chunk_windows`). Both match a job on `instrument = S OR (instrument IS NULL AND symbol = S)`:
with an index on symbol only, PostgreSQL scanned the whole jobs or job_chunks table for it (3 ms
at 50,000 jobs, growing with the table); with this one beside it, a BitmapOr of the two indexes
(0.2 ms at 50,000 jobs).

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.create_index(batch_op.f("ix_jobs_instrument"), ["instrument"])


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.drop_index(batch_op.f("ix_jobs_instrument"))
