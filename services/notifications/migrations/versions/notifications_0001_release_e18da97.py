"""notifications: the stores of release e18da97, the last one made by ``create_all``.

Generated from that commit's table definitions (tests/migrations/release_schema.py wrote the same
schema as DDL for the upgrade test). A store made by that release is adopted at this revision.

Revision ID: notifications_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "notifications_0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "notifications_agreements",
        sa.Column("partner_id", sa.String(length=36), nullable=False),
        sa.Column("elements", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("applied_version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("partner_id"),
    )
    op.create_table(
        "notifications_deliveries",
        sa.Column("delivery_id", sa.String(length=40), nullable=False),
        sa.Column("subscription_id", sa.String(length=36), nullable=False),
        sa.Column("organization_id", sa.String(length=36), nullable=False),
        sa.Column("event_type", sa.String(length=60), nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("leased_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("delivery_id"),
    )
    op.create_index(
        op.f("ix_notifications_deliveries_subscription_id"),
        "notifications_deliveries",
        ["subscription_id"],
        unique=False,
    )
    op.create_index(
        "notifications_deliveries_due",
        "notifications_deliveries",
        ["state", "next_attempt_at"],
        unique=False,
    )
    op.create_index(
        "notifications_deliveries_org",
        "notifications_deliveries",
        ["organization_id", "created_at"],
        unique=False,
    )
    op.create_table(
        "notifications_messages",
        sa.Column("message_id", sa.String(length=36), nullable=False),
        sa.Column("person_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("context", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("leased_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("to_address", sa.String(length=254), nullable=True),
        sa.Column("subject", sa.String(length=300), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("message_id"),
    )
    op.create_index(
        op.f("ix_notifications_messages_person_id"),
        "notifications_messages",
        ["person_id"],
        unique=False,
    )
    op.create_index(
        "notifications_messages_due",
        "notifications_messages",
        ["state", "next_attempt_at"],
        unique=False,
    )
    op.create_table(
        "notifications_organizations",
        sa.Column("organization_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("api_key_sha256", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("organization_id"),
    )
    op.create_index(
        op.f("ix_notifications_organizations_api_key_sha256"),
        "notifications_organizations",
        ["api_key_sha256"],
        unique=False,
    )
    op.create_table(
        "notifications_outbox",
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
        "notifications_persons",
        sa.Column("person_id", sa.String(length=36), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("given_name", sa.String(length=100), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("person_id"),
    )
    op.create_index(
        op.f("ix_notifications_persons_token_sha256"),
        "notifications_persons",
        ["token_sha256"],
        unique=False,
    )
    op.create_table(
        "notifications_positions",
        sa.Column("topic", sa.String(length=249), nullable=False),
        sa.Column("partition", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("mark", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("topic", "partition"),
    )
    op.create_table(
        "notifications_preferences",
        sa.Column("person_id", sa.String(length=36), nullable=False),
        sa.Column("email_enabled", sa.Boolean(), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("person_id"),
    )
    op.create_table(
        "notifications_records",
        sa.Column("record_id", sa.String(length=36), nullable=False),
        sa.Column("person_id", sa.String(length=36), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("submitted_by", sa.String(length=36), nullable=False),
        sa.PrimaryKeyConstraint("record_id"),
    )
    op.create_table(
        "notifications_subscriptions",
        sa.Column("subscription_id", sa.String(length=36), nullable=False),
        sa.Column("organization_id", sa.String(length=36), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("event_types", sa.JSON(), nullable=False),
        sa.Column("secret", sa.String(length=100), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("subscription_id"),
    )
    op.create_index(
        op.f("ix_notifications_subscriptions_organization_id"),
        "notifications_subscriptions",
        ["organization_id"],
        unique=False,
    )
    op.create_table(
        "partner_feed_consents",
        sa.Column("person_id", sa.String(length=36), nullable=False),
        sa.Column("partner_id", sa.String(length=36), nullable=False),
        sa.Column("granted", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("person_id", "partner_id"),
    )
    op.create_index(
        "partner_feed_consents_partner",
        "partner_feed_consents",
        ["partner_id", "granted"],
        unique=False,
    )
    op.create_table(
        "partner_feed_counters",
        sa.Column("partner_id", sa.String(length=36), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("partner_id"),
    )
    op.create_table(
        "partner_feed_entries",
        sa.Column("partner_id", sa.String(length=36), nullable=False),
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("pseudonymous_id", sa.String(length=80), nullable=False),
        sa.Column("event_type", sa.String(length=40), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("partner_id", "seq"),
    )
    op.create_table(
        "partner_feed_outbox",
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
        "partner_feed_persons",
        sa.Column("person_id", sa.String(length=36), nullable=False),
        sa.Column("birth_year", sa.Integer(), nullable=False),
        sa.Column("county", sa.String(length=100), nullable=True),
        sa.Column("education_level", sa.String(length=40), nullable=True),
        sa.PrimaryKeyConstraint("person_id"),
    )
    op.create_table(
        "partner_feed_positions",
        sa.Column("topic", sa.String(length=249), nullable=False),
        sa.Column("partition", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("mark", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("topic", "partition"),
    )
    op.create_table(
        "partner_feed_published",
        sa.Column("partner_id", sa.String(length=36), nullable=False),
        sa.Column("person_id", sa.String(length=36), nullable=False),
        sa.Column("pseudonymous_id", sa.String(length=80), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("partner_id", "person_id"),
    )
    op.create_table(
        "partner_feed_records",
        sa.Column("record_id", sa.String(length=36), nullable=False),
        sa.Column("person_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=True),
        sa.Column("role_category", sa.String(length=7), nullable=True),
        sa.Column("employment_status", sa.String(length=20), nullable=True),
        sa.Column("started_on", sa.Date(), nullable=True),
        sa.Column("hours", sa.Float(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=True),
        sa.Column("credential_type", sa.String(length=100), nullable=True),
        sa.PrimaryKeyConstraint("record_id"),
    )
    op.create_index(
        op.f("ix_partner_feed_records_person_id"),
        "partner_feed_records",
        ["person_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_partner_feed_records_person_id"), table_name="partner_feed_records")
    op.drop_table("partner_feed_records")
    op.drop_table("partner_feed_published")
    op.drop_table("partner_feed_positions")
    op.drop_table("partner_feed_persons")
    op.drop_table("partner_feed_outbox")
    op.drop_table("partner_feed_entries")
    op.drop_table("partner_feed_counters")
    op.drop_index("partner_feed_consents_partner", table_name="partner_feed_consents")
    op.drop_table("partner_feed_consents")
    op.drop_index(
        op.f("ix_notifications_subscriptions_organization_id"),
        table_name="notifications_subscriptions",
    )
    op.drop_table("notifications_subscriptions")
    op.drop_table("notifications_records")
    op.drop_table("notifications_preferences")
    op.drop_table("notifications_positions")
    op.drop_index(op.f("ix_notifications_persons_token_sha256"), table_name="notifications_persons")
    op.drop_table("notifications_persons")
    op.drop_table("notifications_outbox")
    op.drop_index(
        op.f("ix_notifications_organizations_api_key_sha256"),
        table_name="notifications_organizations",
    )
    op.drop_table("notifications_organizations")
    op.drop_index("notifications_messages_due", table_name="notifications_messages")
    op.drop_index(op.f("ix_notifications_messages_person_id"), table_name="notifications_messages")
    op.drop_table("notifications_messages")
    op.drop_index("notifications_deliveries_org", table_name="notifications_deliveries")
    op.drop_index("notifications_deliveries_due", table_name="notifications_deliveries")
    op.drop_index(
        op.f("ix_notifications_deliveries_subscription_id"), table_name="notifications_deliveries"
    )
    op.drop_table("notifications_deliveries")
    op.drop_table("notifications_agreements")
