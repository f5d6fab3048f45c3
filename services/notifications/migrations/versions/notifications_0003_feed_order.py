"""notifications: the partner feed's order gates (a consent's occurred_at per person and
partner, a record's status version), services/notifications/feed_order.py.

Revision ID: notifications_0003
Revises: notifications_0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ler.migrations import create_table_once

revision = "notifications_0003"
down_revision: str | None = "notifications_0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    create_table_once(
        "partner_feed_consent_clocks",
        sa.Column("person_id", sa.String(length=36), nullable=False),
        sa.Column("partner_id", sa.String(length=36), nullable=False),
        sa.Column("occurred_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("person_id", "partner_id"),
    )
    create_table_once(
        "partner_feed_status_versions",
        sa.Column("record_id", sa.String(length=36), nullable=False),
        sa.Column("record_version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("record_id"),
    )


def downgrade() -> None:
    op.drop_table("partner_feed_status_versions")
    op.drop_table("partner_feed_consent_clocks")
