"""enrollment: affiliations (which organizations' records about a person verify automatically).

Tolerant of a store made by ``create_all`` after release e18da97 (the table may be there already).

Revision ID: enrollment_0002
Revises: enrollment_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ler.migrations import create_table_once

revision = "enrollment_0002"
down_revision: str | None = "enrollment_0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    create_table_once(
        "enrollment_affiliations",
        sa.Column("person_id", sa.String(length=36), nullable=False),
        sa.Column("organization_id", sa.String(length=36), nullable=False),
        sa.Column("added_by", sa.String(length=20), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("person_id", "organization_id"),
        indexes=[("enrollment_affiliations_organization", ["organization_id", "person_id"])],
    )


def downgrade() -> None:
    op.drop_table("enrollment_affiliations")
