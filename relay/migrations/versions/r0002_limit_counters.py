"""Rate-limit and lockout counters, kept across restarts (issue 14).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "limit_counters",
        sa.Column("kind", sa.String(32), primary_key=True),
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("a", sa.Double, nullable=False),
        sa.Column("b", sa.Double, nullable=False),
        sa.Column("c", sa.Double, nullable=False),
        sa.Column("saved_at", sa.Double, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("limit_counters")
