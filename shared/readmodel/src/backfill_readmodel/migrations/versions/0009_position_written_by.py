"""Projector positions: a token written with each position, so a projector can tell that the
tables are still as its own last commit left them (and keep the rows it folded in memory)

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("projector_positions") as batch_op:
        batch_op.add_column(sa.Column("written_by", sa.String(length=40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("projector_positions") as batch_op:
        batch_op.drop_column("written_by")
