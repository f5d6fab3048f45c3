"""Order gates of the partner feed: consents and record statuses reach the feed from two topics and
several outboxes (the verification API's and its verifier's), so the order they are read in is not
the order they happened in. A consent change applies only if it occurred no earlier than the one
the feed holds (``occurred_at``); a status only if its ``record_version`` is higher. The newest
seen per key is kept in two tables of their own (docs/partner-feed.md, "Order").
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import BigInteger, Column, MetaData, String, Table, select
from sqlalchemy.ext.asyncio import AsyncConnection

from ler.sql import Database
from services.notifications.feed import (
    FeedChange,
    FeedConsent,
    FeedRecordStatus,
    newest_consents,
    newest_statuses,
)


@dataclass(frozen=True)
class OrderTables:
    consent_clocks: Table
    status_versions: Table


def order_tables(metadata: MetaData) -> OrderTables:
    return OrderTables(
        consent_clocks=Table(
            "partner_feed_consent_clocks",
            metadata,
            Column("person_id", String(36), primary_key=True),
            Column("partner_id", String(36), primary_key=True),
            Column("occurred_us", BigInteger, nullable=False),
        ),
        status_versions=Table(
            "partner_feed_status_versions",
            metadata,
            Column("record_id", String(36), primary_key=True),
            Column("record_version", BigInteger, nullable=False),
        ),
    )


async def fresh_consents(
    conn: AsyncConnection, db: Database, t: OrderTables, changes: list[FeedChange]
) -> list[FeedConsent]:
    """The consent changes of a batch to apply (newer than what the feed holds), remembered."""
    newest = newest_consents(changes)
    if not newest:
        return []
    c = t.consent_clocks
    held = {
        (r.person_id, r.partner_id): r.occurred_us
        for r in await conn.execute(
            select(c).where(
                c.c.person_id.in_(sorted({p for p, _ in newest})),
                c.c.partner_id.in_(sorted({q for _, q in newest})),
            )
        )
    }
    keep = [v for k, v in newest.items() if k not in held or v.occurred_us >= held[k]]
    if keep:
        await conn.execute(
            db.upsert(c, ["person_id", "partner_id"], ["occurred_us"]),
            [
                {"person_id": v.person_id, "partner_id": v.partner_id, "occurred_us": v.occurred_us}
                for v in keep
            ],
        )
    return keep


async def fresh_statuses(
    conn: AsyncConnection, db: Database, t: OrderTables, changes: list[FeedChange]
) -> list[FeedRecordStatus]:
    """The record statuses of a batch to apply (a higher version than held), remembered."""
    newest = newest_statuses(changes)
    if not newest:
        return []
    v = t.status_versions
    held = {
        r.record_id: r.record_version
        for r in await conn.execute(select(v).where(v.c.record_id.in_(sorted(newest))))
    }
    keep = [s for k, s in newest.items() if k not in held or s.version > held[k]]
    if keep:
        await conn.execute(
            db.upsert(v, ["record_id"], ["record_version"]),
            [{"record_id": s.record_id, "record_version": s.version} for s in keep],
        )
    return keep
