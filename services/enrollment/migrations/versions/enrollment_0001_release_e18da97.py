"""enrollment: the stores of release e18da97, the last one made by ``create_all``.

Generated from that commit's table definitions (tests/migrations/release_schema.py wrote the same
schema as DDL for the upgrade test). A store made by that release is adopted at this revision.

Revision ID: enrollment_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "enrollment_0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "enrollment_consents",
        sa.Column("person_id", sa.String(length=36), nullable=False),
        sa.Column("partner_id", sa.String(length=36), nullable=False),
        sa.Column("granted", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("person_id", "partner_id"),
    )
    op.create_table(
        "enrollment_idempotency",
        sa.Column("organization_id", sa.String(length=36), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("request_sha256", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("organization_id", "key"),
    )
    op.create_index(
        "enrollment_idempotency_created", "enrollment_idempotency", ["created_at"], unique=False
    )
    op.create_table(
        "enrollment_organizations",
        sa.Column("organization_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("api_key_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("organization_id"),
        sa.UniqueConstraint("api_key_sha256"),
    )
    op.create_table(
        "enrollment_outbox",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("topic", sa.String(length=249), nullable=False),
        sa.Column("key", sa.LargeBinary(), nullable=True),
        sa.Column("value", sa.LargeBinary(), nullable=False),
        sa.Column("headers", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "enrollment_persons",
        sa.Column("person_id", sa.String(length=36), nullable=False),
        sa.Column("given_name", sa.String(length=100), nullable=False),
        sa.Column("family_name", sa.String(length=100), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("birth_date", sa.Date(), nullable=False),
        sa.Column("county", sa.String(length=200), nullable=True),
        sa.Column("education_level", sa.String(length=40), nullable=True),
        sa.Column("demographics", sa.JSON(), nullable=False),
        sa.Column("email_key", sa.String(length=254), nullable=False),
        sa.Column("name_birth_key", sa.String(length=300), nullable=False),
        sa.Column("access_token_sha256", sa.String(length=64), nullable=False),
        sa.Column("possible_duplicate_of", sa.String(length=36), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("person_id"),
        sa.UniqueConstraint("access_token_sha256"),
    )
    op.create_index(
        op.f("ix_enrollment_persons_email_key"), "enrollment_persons", ["email_key"], unique=False
    )
    op.create_index(
        op.f("ix_enrollment_persons_name_birth_key"),
        "enrollment_persons",
        ["name_birth_key"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_enrollment_persons_name_birth_key"), table_name="enrollment_persons")
    op.drop_index(op.f("ix_enrollment_persons_email_key"), table_name="enrollment_persons")
    op.drop_table("enrollment_persons")
    op.drop_table("enrollment_outbox")
    op.drop_table("enrollment_organizations")
    op.drop_index("enrollment_idempotency_created", table_name="enrollment_idempotency")
    op.drop_table("enrollment_idempotency")
    op.drop_table("enrollment_consents")
