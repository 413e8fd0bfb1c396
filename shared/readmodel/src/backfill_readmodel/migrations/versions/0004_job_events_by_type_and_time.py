"""Job events by type and time, for throughput over the last hour

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("job_events") as batch_op:
        batch_op.create_index(batch_op.f("ix_job_events_type_ts"), ["type", "ts"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("job_events") as batch_op:
        batch_op.drop_index(batch_op.f("ix_job_events_type_ts"))
