"""verification: the stores of release e18da97, the last one made by ``create_all``.

Generated from that commit's table definitions (tests/migrations/release_schema.py wrote the same
schema as DDL for the upgrade test). A store made by that release is adopted at this revision.

Revision ID: verification_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "verification_0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "sla_items",
        sa.Column("item_id", sa.String(length=80), nullable=False),
        sa.Column("queue", sa.String(length=30), nullable=False),
        sa.Column("person_id", sa.String(length=36), nullable=False),
        sa.Column("record_id", sa.String(length=36), nullable=False),
        sa.Column("organization_id", sa.String(length=36), nullable=True),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("warn_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=False),
        sa.Column("warned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("breached_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("elapsed_seconds", sa.Float(), nullable=True),
        sa.Column("within_deadline", sa.Boolean(), nullable=True),
        sa.PrimaryKeyConstraint("item_id"),
    )
    op.create_index("sla_items_closed", "sla_items", ["queue", "closed_at"], unique=False)
    op.create_index("sla_items_open_warn", "sla_items", ["closed_at", "warn_at"], unique=False)
    op.create_table(
        "sla_outbox",
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
        "sla_partition_times",
        sa.Column("topic", sa.String(length=249), nullable=False),
        sa.Column("partition", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("event_time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("topic", "partition"),
    )
    op.create_table(
        "sla_positions",
        sa.Column("topic", sa.String(length=249), nullable=False),
        sa.Column("partition", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("mark", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("topic", "partition"),
    )
    op.create_table(
        "verification_api_outbox",
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
        "verification_appeals",
        sa.Column("appeal_id", sa.String(length=36), nullable=False),
        sa.Column("record_id", sa.String(length=36), nullable=False),
        sa.Column("person_id", sa.String(length=36), nullable=False),
        sa.Column("appeal_of", sa.String(length=20), nullable=False),
        sa.Column("contested_version", sa.Integer(), nullable=False),
        sa.Column("statement", sa.Text(), nullable=True),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("filed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(length=80), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("appeal_id"),
        sa.UniqueConstraint("record_id", "contested_version"),
    )
    op.create_index(
        "verification_appeals_state", "verification_appeals", ["state", "filed_at"], unique=False
    )
    op.create_table(
        "verification_audit",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("record_id", sa.String(length=36), nullable=False),
        sa.Column("event_type", sa.String(length=40), nullable=False),
        sa.Column("actor", sa.String(length=80), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "verification_audit_record", "verification_audit", ["record_id", "id"], unique=False
    )
    op.create_table(
        "verification_credentials",
        sa.Column("credential_id", sa.String(length=36), nullable=False),
        sa.Column("record_id", sa.String(length=36), nullable=False),
        sa.Column("person_id", sa.String(length=36), nullable=False),
        sa.Column("organization_id", sa.String(length=36), nullable=True),
        sa.Column("credential_type", sa.String(length=40), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("list_id", sa.String(length=20), nullable=False),
        sa.Column("status_index", sa.Integer(), nullable=False),
        sa.Column("revoked", sa.Boolean(), nullable=False),
        sa.Column("revoked_reason", sa.Text(), nullable=True),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("credential_id"),
        sa.UniqueConstraint("record_id"),
    )
    op.create_index(
        "verification_credentials_revoked",
        "verification_credentials",
        ["list_id", "revoked"],
        unique=False,
    )
    op.create_table(
        "verification_organizations",
        sa.Column("organization_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("api_key_sha256", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("organization_id"),
        sa.UniqueConstraint("api_key_sha256"),
    )
    op.create_table(
        "verification_outbox",
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
        "verification_persons",
        sa.Column("person_id", sa.String(length=36), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("person_id"),
        sa.UniqueConstraint("token_sha256"),
    )
    op.create_table(
        "verification_positions",
        sa.Column("topic", sa.String(length=249), nullable=False),
        sa.Column("partition", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("mark", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("topic", "partition"),
    )
    op.create_table(
        "verification_records",
        sa.Column("record_id", sa.String(length=36), nullable=False),
        sa.Column("person_id", sa.String(length=36), nullable=False),
        sa.Column("organization_id", sa.String(length=36), nullable=True),
        sa.Column("submitter_kind", sa.String(length=20), nullable=False),
        sa.Column("record_type", sa.String(length=20), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("correlation_id", sa.String(length=100), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("queue", sa.String(length=30), nullable=True),
        sa.Column("policy_rule", sa.String(length=100), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("reason_code", sa.String(length=40), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("decided_by", sa.String(length=80), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_version", sa.Integer(), nullable=True),
        sa.Column("credential_id", sa.String(length=36), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("record_id"),
    )
    op.create_index(
        "verification_records_awaiting",
        "verification_records",
        ["organization_id", "state"],
        unique=False,
    )
    op.create_index(
        "verification_records_person", "verification_records", ["person_id"], unique=False
    )
    op.create_index(
        "verification_records_state",
        "verification_records",
        ["state", "submitted_at"],
        unique=False,
    )
    op.create_table(
        "verification_reviewers",
        sa.Column("reviewer_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("reviewer_id"),
        sa.UniqueConstraint("token_sha256"),
    )
    op.create_table(
        "verification_status_entries",
        sa.Column("list_id", sa.String(length=20), nullable=False),
        sa.Column("status_index", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("credential_id", sa.String(length=36), nullable=False),
        sa.PrimaryKeyConstraint("list_id", "status_index"),
    )
    op.create_table(
        "verification_status_lists",
        sa.Column("list_id", sa.String(length=20), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("used", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("list_id"),
    )


def downgrade() -> None:
    op.drop_table("verification_status_lists")
    op.drop_table("verification_status_entries")
    op.drop_table("verification_reviewers")
    op.drop_index("verification_records_state", table_name="verification_records")
    op.drop_index("verification_records_person", table_name="verification_records")
    op.drop_index("verification_records_awaiting", table_name="verification_records")
    op.drop_table("verification_records")
    op.drop_table("verification_positions")
    op.drop_table("verification_persons")
    op.drop_table("verification_outbox")
    op.drop_table("verification_organizations")
    op.drop_index("verification_credentials_revoked", table_name="verification_credentials")
    op.drop_table("verification_credentials")
    op.drop_index("verification_audit_record", table_name="verification_audit")
    op.drop_table("verification_audit")
    op.drop_index("verification_appeals_state", table_name="verification_appeals")
    op.drop_table("verification_appeals")
    op.drop_table("verification_api_outbox")
    op.drop_table("sla_positions")
    op.drop_table("sla_partition_times")
    op.drop_table("sla_outbox")
    op.drop_index("sla_items_open_warn", table_name="sla_items")
    op.drop_index("sla_items_closed", table_name="sla_items")
    op.drop_table("sla_items")
