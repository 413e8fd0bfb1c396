"""Adjusted close on bars, and corporate actions (dividends, splits) of their own

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import backfill_readmodel.types

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("bars") as batch_op:
        batch_op.add_column(sa.Column("adj_close", sa.Float(), nullable=True))
    op.create_table(
        "corporate_actions",
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("ts", backfill_readmodel.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint(
            "source", "symbol", "ts", "kind", name=op.f("pk_corporate_actions")
        ),
    )


def downgrade() -> None:
    op.drop_table("corporate_actions")
    with op.batch_alter_table("bars") as batch_op:
        batch_op.drop_column("adj_close")
