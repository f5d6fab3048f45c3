"""notifications: the order gate of people's notices (the highest record_version noticed per
record), services/notifications/notice_order.py.

Revision ID: notifications_0004
Revises: notifications_0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ler.migrations import create_table_once

revision = "notifications_0004"
down_revision: str | None = "notifications_0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    create_table_once(
        "notifications_notice_versions",
        sa.Column("record_id", sa.String(length=36), nullable=False),
        sa.Column("record_version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("record_id"),
    )


def downgrade() -> None:
    op.drop_table("notifications_notice_versions")
