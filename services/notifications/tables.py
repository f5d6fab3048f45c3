"""The notifications service's tables (one database: the API, both processors and the senders).

Every store object declares all of them on its own ``MetaData``; the database itself is made and
changed by the notifications migration history (``services/notifications/migrations/``), and a
change here needs a revision there (tests/integration/test_migrations.py checks).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)


@dataclass(frozen=True)
class Tables:
    persons: Table
    preferences: Table
    organizations: Table
    records: Table
    messages: Table
    subscriptions: Table
    deliveries: Table
    agreements: Table
    feed_persons: Table
    feed_consents: Table
    feed_records: Table
    feed_published: Table
    feed_entries: Table
    feed_counters: Table
    feed_withdrawn: Table


def define_tables(metadata: MetaData) -> Tables:
    ts = DateTime(timezone=True)
    return Tables(
        persons=Table(
            "notifications_persons",
            metadata,
            Column("person_id", String(36), primary_key=True),
            Column("email", String(254), nullable=False),
            Column("given_name", String(100), nullable=False),
            Column("token_sha256", String(64), nullable=False, index=True),
        ),
        preferences=Table(
            "notifications_preferences",
            metadata,
            Column("person_id", String(36), primary_key=True),
            Column("email_enabled", Boolean, nullable=False),
            Column("events", JSON, nullable=False),
            Column("updated_at", ts, nullable=False),
        ),
        organizations=Table(
            "notifications_organizations",
            metadata,
            Column("organization_id", String(36), primary_key=True),
            Column("name", String(300), nullable=False),
            Column("kind", String(40), nullable=False),
            Column("api_key_sha256", String(64), nullable=True, index=True),
        ),
        records=Table(
            "notifications_records",
            metadata,
            Column("record_id", String(36), primary_key=True),
            Column("person_id", String(36), nullable=False),
            Column("title", String(300), nullable=False),
            Column("submitted_by", String(36), nullable=False),
        ),
        messages=Table(
            "notifications_messages",
            metadata,
            Column("message_id", String(36), primary_key=True),
            Column("person_id", String(36), nullable=False, index=True),
            Column("kind", String(40), nullable=False),
            Column("event_id", String(36), nullable=False),
            Column("context", JSON, nullable=False),
            # queued -> sent | suppressed (preferences) | failed (after the last attempt);
            # superseded: an older transition than one already noticed, never sent
            Column("state", String(20), nullable=False),
            Column("attempts", Integer, nullable=False, default=0),
            Column("next_attempt_at", ts, nullable=False),
            Column("leased_until", ts, nullable=True),
            Column("to_address", String(254), nullable=True),
            Column("subject", String(300), nullable=True),
            Column("last_error", String(500), nullable=True),
            Column("created_at", ts, nullable=False),
            Column("sent_at", ts, nullable=True),
            Index("notifications_messages_due", "state", "next_attempt_at"),
        ),
        subscriptions=Table(
            "notifications_subscriptions",
            metadata,
            Column("subscription_id", String(36), primary_key=True),
            Column("organization_id", String(36), nullable=False, index=True),
            Column("url", String(2000), nullable=False),
            Column("event_types", JSON, nullable=False),
            Column("secret", String(100), nullable=False),
            Column("active", Boolean, nullable=False),
            Column("created_at", ts, nullable=False),
        ),
        deliveries=Table(
            "notifications_deliveries",
            metadata,
            Column("delivery_id", String(40), primary_key=True),  # the webhook-id
            Column("subscription_id", String(36), nullable=False, index=True),
            Column("organization_id", String(36), nullable=False),
            Column("event_type", String(60), nullable=False),
            Column("event_id", String(36), nullable=False),
            Column("body", LargeBinary, nullable=False),
            # pending (first try or retry scheduled) -> delivered | dead
            Column("state", String(20), nullable=False),
            Column("attempts", Integer, nullable=False),
            Column("next_attempt_at", ts, nullable=False),
            Column("leased_until", ts, nullable=True),
            Column("last_status", Integer, nullable=True),
            Column("last_error", String(500), nullable=True),
            Column("created_at", ts, nullable=False),
            Column("delivered_at", ts, nullable=True),
            Index("notifications_deliveries_due", "state", "next_attempt_at"),
            Index("notifications_deliveries_org", "organization_id", "created_at"),
        ),
        agreements=Table(
            "notifications_agreements",
            metadata,
            Column("partner_id", String(36), primary_key=True),
            Column("elements", JSON, nullable=False),
            Column("version", Integer, nullable=False),
            Column("applied_version", Integer, nullable=False),
            Column("updated_at", ts, nullable=False),
        ),
        feed_persons=Table(
            "partner_feed_persons",
            metadata,
            Column("person_id", String(36), primary_key=True),
            Column("birth_year", Integer, nullable=False),
            Column("county", String(100), nullable=True),
            Column("education_level", String(40), nullable=True),
        ),
        feed_consents=Table(
            "partner_feed_consents",
            metadata,
            Column("person_id", String(36), primary_key=True),
            Column("partner_id", String(36), primary_key=True),
            Column("granted", Boolean, nullable=False),
            Index("partner_feed_consents_partner", "partner_id", "granted"),
        ),
        feed_records=Table(
            "partner_feed_records",
            metadata,
            Column("record_id", String(36), primary_key=True),
            Column("person_id", String(36), nullable=False, index=True),
            Column("kind", String(20), nullable=True),
            Column("role_category", String(7), nullable=True),
            Column("employment_status", String(20), nullable=True),
            Column("started_on", Date, nullable=True),
            Column("hours", Float, nullable=True),
            Column("status", String(20), nullable=True),
            Column("credential_type", String(100), nullable=True),
        ),
        feed_published=Table(
            "partner_feed_published",
            metadata,
            Column("partner_id", String(36), primary_key=True),
            Column("person_id", String(36), primary_key=True),
            Column("pseudonymous_id", String(80), nullable=False),
            Column("state", String(20), nullable=False),  # published | retracted
            Column("digest", String(64), nullable=True),
        ),
        feed_entries=Table(
            "partner_feed_entries",
            metadata,
            Column("partner_id", String(36), primary_key=True),
            Column("seq", BigInteger, primary_key=True, autoincrement=False),
            Column("pseudonymous_id", String(80), nullable=False),
            Column("event_type", String(40), nullable=False),
            Column("body", Text, nullable=False),
            Column("created_at", ts, nullable=False),
        ),
        feed_counters=Table(
            "partner_feed_counters",
            metadata,
            Column("partner_id", String(36), primary_key=True),
            Column("seq", BigInteger, nullable=False),
        ),
        # Publications whose person withdrew consent: their deliveries are never sent again.
        feed_withdrawn=Table(
            "partner_feed_withdrawn",
            metadata,
            Column("event_id", String(36), primary_key=True),
            Column("partner_id", String(36), nullable=False),
            Column("pseudonymous_id", String(80), nullable=False),
            Column("withdrawn_at", ts, nullable=False),
        ),
    )
