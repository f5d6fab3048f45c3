"""notifications: the partner feed's withdrawals (retractions held back while a publication is
in flight).

Tolerant of a store made by ``create_all`` after release e18da97 (the table may be there already).

Revision ID: notifications_0002
Revises: notifications_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ler.migrations import create_table_once

revision = "notifications_0002"
down_revision: str | None = "notifications_0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    create_table_once(
        "partner_feed_withdrawn",
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("partner_id", sa.String(length=36), nullable=False),
        sa.Column("pseudonymous_id", sa.String(length=80), nullable=False),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("event_id"),
    )


def downgrade() -> None:
    op.drop_table("partner_feed_withdrawn")
