"""Jobs: the universe and the run of it that fanned them out, for the run's aggregate view

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.add_column(sa.Column("universe", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("universe_run", sa.String(length=64), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_jobs_universe_universe_run"), ["universe", "universe_run"]
        )


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.drop_index(batch_op.f("ix_jobs_universe_universe_run"))
        batch_op.drop_column("universe_run")
        batch_op.drop_column("universe")
