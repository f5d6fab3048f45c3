"""wallet: the stores of release e18da97, the last one made by ``create_all``.

Generated from that commit's table definitions (tests/migrations/release_schema.py wrote the same
schema as DDL for the upgrade test). A store made by that release is adopted at this revision.

Revision ID: wallet_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "wallet_0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "wallet_api_outbox",
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
        "wallet_audit",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("person_id", sa.String(length=36), nullable=False),
        sa.Column("share_id", sa.String(length=36), nullable=True),
        sa.Column("actor", sa.String(length=80), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("wallet_audit_person", "wallet_audit", ["person_id", "at"], unique=False)
    op.create_table(
        "wallet_demographics",
        sa.Column("person_id", sa.String(length=36), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("person_id"),
    )
    op.create_table(
        "wallet_organizations",
        sa.Column("organization_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("organization_id"),
    )
    op.create_table(
        "wallet_outbox",
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
        "wallet_persons",
        sa.Column("person_id", sa.String(length=36), nullable=False),
        sa.Column("display_name", sa.String(length=400), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("enrolled_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("person_id"),
        sa.UniqueConstraint("token_sha256"),
    )
    op.create_table(
        "wallet_positions",
        sa.Column("topic", sa.String(length=249), nullable=False),
        sa.Column("partition", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("mark", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("topic", "partition"),
    )
    op.create_table(
        "wallet_records",
        sa.Column("record_id", sa.String(length=36), nullable=False),
        sa.Column("person_id", sa.String(length=36), nullable=False),
        sa.Column("type", sa.String(length=20), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("submitted_by", sa.String(length=36), nullable=False),
        sa.Column("submitter_kind", sa.String(length=20), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("projected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("record_id"),
    )
    op.create_index(
        "wallet_records_person", "wallet_records", ["person_id", "submitted_at"], unique=False
    )
    op.create_table(
        "wallet_shares",
        sa.Column("share_id", sa.String(length=36), nullable=False),
        sa.Column("person_id", sa.String(length=36), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("audience", sa.String(length=200), nullable=False),
        sa.Column("record_ids", sa.JSON(), nullable=False),
        sa.Column("include_demographics", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("share_id"),
        sa.UniqueConstraint("token_sha256"),
    )
    op.create_index(
        "wallet_shares_person", "wallet_shares", ["person_id", "created_at"], unique=False
    )
    op.create_table(
        "wallet_skills",
        sa.Column("record_id", sa.String(length=36), nullable=False),
        sa.Column("skill_id", sa.String(length=80), nullable=False),
        sa.Column("person_id", sa.String(length=36), nullable=False),
        sa.Column("verified", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("matched_on", sa.String(length=300), nullable=False),
        sa.Column("credential_id", sa.String(length=100), nullable=True),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("record_id", "skill_id"),
    )
    op.create_index("wallet_skills_person", "wallet_skills", ["person_id"], unique=False)
    op.create_table(
        "wallet_verifications",
        sa.Column("record_id", sa.String(length=36), nullable=False),
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("person_id", sa.String(length=36), nullable=False),
        sa.Column("event_type", sa.String(length=40), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("record_id", "version"),
    )
    op.create_index(
        "wallet_verifications_person", "wallet_verifications", ["person_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("wallet_verifications_person", table_name="wallet_verifications")
    op.drop_table("wallet_verifications")
    op.drop_index("wallet_skills_person", table_name="wallet_skills")
    op.drop_table("wallet_skills")
    op.drop_index("wallet_shares_person", table_name="wallet_shares")
    op.drop_table("wallet_shares")
    op.drop_index("wallet_records_person", table_name="wallet_records")
    op.drop_table("wallet_records")
    op.drop_table("wallet_positions")
    op.drop_table("wallet_persons")
    op.drop_table("wallet_outbox")
    op.drop_table("wallet_organizations")
    op.drop_table("wallet_demographics")
    op.drop_index("wallet_audit_person", table_name="wallet_audit")
    op.drop_table("wallet_audit")
    op.drop_table("wallet_api_outbox")
