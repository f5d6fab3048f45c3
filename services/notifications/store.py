"""The notifications store: what the processor derives, and the "to send" queues of messages and
webhook deliveries that the senders work through after commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import MetaData, Table, and_, bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from ler.access_sql import apply_access_changes
from ler.sql import Database
from ler.sqlstore import SqlProcessorStore
from services.notifications.domain import (
    Notice,
    NotificationChange,
    OrganizationKnown,
    PersonKnown,
    RecordKnown,
    WebhookEvent,
    webhook_body,
    webhook_id_for,
)
from services.notifications.migrations import HISTORY
from services.notifications.notice_order import SUPERSEDED, notice_versions_table, stale_notices
from services.notifications.tables import Tables, define_tables

PREFIX = "notifications"


def utcnow() -> datetime:
    return datetime.now(UTC)


def aware(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


async def fan_out(
    db: Database,
    t: Tables,
    conn: AsyncConnection,
    events: list[WebhookEvent],
    state: str = "pending",
) -> int:
    """Queue one delivery per event and active subscription of its organization and type
    (``state`` ``replayed``: rebuilt by ``ler replay``, never sent unless retried)."""
    if not events:
        return 0
    s = t.subscriptions
    organizations = sorted({e.organization_id for e in events})
    rows = (
        await conn.execute(
            select(s.c.subscription_id, s.c.organization_id, s.c.event_types).where(
                s.c.organization_id.in_(organizations), s.c.active.is_(True)
            )
        )
    ).all()
    if not rows:
        return 0
    by_org: dict[str, list[Any]] = {}
    for row in rows:
        by_org.setdefault(row.organization_id, []).append(row)
    now = utcnow()
    deliveries = []
    for event in events:
        body = orjson.dumps(webhook_body(event))
        for sub in by_org.get(event.organization_id, []):
            if event.event_type in sub.event_types:
                deliveries.append(
                    {
                        "delivery_id": webhook_id_for(sub.subscription_id, event.event_id),
                        "subscription_id": sub.subscription_id,
                        "organization_id": event.organization_id,
                        "event_type": event.event_type,
                        "event_id": event.event_id,
                        "body": body,
                        "state": state,
                        "attempts": 0,
                        "next_attempt_at": now,
                        "created_at": now,
                    }
                )
    if deliveries:
        await conn.execute(db.insert_ignore(t.deliveries), deliveries)
    return len(deliveries)


class SqlNotificationStore(SqlProcessorStore[NotificationChange]):
    """The notifications processor's store: people, organizations, messages, deliveries."""

    def __init__(self, url: str) -> None:
        super().__init__(Database(url, MetaData(), migrations=HISTORY), PREFIX)
        self.t = define_tables(self.db.metadata)
        self.notice_versions = notice_versions_table(self.db.metadata)
        self.queued = 0
        # Set by ``ler replay notifications``: rebuilt messages and deliveries are marked
        # ``replayed`` (their sending happened, or not, before the database was lost).
        self.replaying = False

    async def apply(self, conn: AsyncConnection, changes: list[NotificationChange]) -> None:
        t, now = self.t, utcnow()
        persons = [c for c in changes if isinstance(c, PersonKnown)]
        organizations = [c for c in changes if isinstance(c, OrganizationKnown)]
        records = [c for c in changes if isinstance(c, RecordKnown)]
        notices = [c for c in changes if isinstance(c, Notice)]
        webhooks = [c for c in changes if isinstance(c, WebhookEvent)]
        if persons:
            await conn.execute(
                self.db.upsert(t.persons, ["person_id"], ["email", "given_name", "token_sha256"]),
                [
                    {
                        "person_id": p.person_id,
                        "email": p.email,
                        "given_name": p.given_name,
                        "token_sha256": p.token_sha256,
                    }
                    for p in persons
                ],
            )
        if organizations:
            await conn.execute(
                self.db.upsert(
                    t.organizations, ["organization_id"], ["name", "kind", "api_key_sha256"]
                ),
                [
                    {
                        "organization_id": o.organization_id,
                        "name": o.name,
                        "kind": o.kind,
                        "api_key_sha256": o.api_key_sha256,
                    }
                    for o in organizations
                ],
            )
        # A reset token or a rotated or revoked key: the API stops accepting the old one.
        await apply_access_changes(
            conn,
            changes,
            persons=(t.persons, "token_sha256"),
            organizations=(t.organizations, "api_key_sha256"),
        )
        if records:
            await conn.execute(
                self.db.insert_ignore(t.records),
                [
                    {
                        "record_id": r.record_id,
                        "person_id": r.person_id,
                        "title": r.title,
                        "submitted_by": r.submitted_by,
                    }
                    for r in records
                ],
            )
        # Notices of a record's transitions read after a newer one are never sent.
        stale = await stale_notices(conn, self.db, self.notice_versions, notices)
        if notices:
            await conn.execute(
                self.db.insert_ignore(t.messages),
                [
                    {
                        "message_id": n.message_id,
                        "person_id": n.person_id,
                        "kind": n.kind,
                        "event_id": n.event_id,
                        "context": n.context,
                        "state": SUPERSEDED
                        if n.message_id in stale
                        else "replayed"
                        if self.replaying
                        else "queued",
                        "attempts": 0,
                        "next_attempt_at": now,
                        "created_at": now,
                    }
                    for n in notices
                ],
            )
            self.queued += len(notices)
        await fan_out(self.db, t, conn, webhooks, "replayed" if self.replaying else "pending")


@dataclass(frozen=True, slots=True)
class Attempt:
    """The outcome of one delivery or send attempt, written back in batches."""

    id: str
    ok: bool
    status: int | None = None
    error: str | None = None
    retry_in: float | None = None  # None with ok=False: give up (dead / failed)
    extra: dict[str, Any] | None = None
    final_state: str | None = None  # a terminal state other than done / given up
    counts: bool = True  # False: a wait for missing data, not a failed attempt


class Queue:
    """A "to send" table worked through by a sender: claim due rows under a lease, then write
    each attempt's outcome. A crashed sender's leases expire and its rows are claimed again."""

    def __init__(self, db: Database, table: Table, key: str, pending: str, done: str, gave_up: str):
        self.db = db
        self.table = table
        self.key = table.c[key]
        self.pending, self.done, self.gave_up = pending, done, gave_up

    async def claim(
        self,
        limit: int,
        lease_seconds: float,
        *,
        where: Any = None,
        pick: Callable[[Sequence[Any]], Sequence[Any]] | None = None,
    ) -> list[Any]:
        t, now = self.table, utcnow()
        query = (
            select(t)
            .where(
                t.c.state == self.pending,
                t.c.next_attempt_at <= now,
                or_(t.c.leased_until.is_(None), t.c.leased_until < now),
            )
            .order_by(t.c.next_attempt_at)
            .limit(limit)
        )
        if where is not None:
            query = query.where(where)
        if self.db.is_postgres:
            query = query.with_for_update(skip_locked=True)
        async with self.db.transaction() as conn:
            rows: Sequence[Any] = (await conn.execute(query)).all()
            if pick is not None:
                rows = pick(rows)
            if rows:
                await conn.execute(
                    update(t)
                    .where(self.key.in_([getattr(r, self.key.name) for r in rows]))
                    .values(leased_until=now + timedelta(seconds=lease_seconds))
                )
        return list(rows)

    async def record(self, attempts: Iterable[Attempt], done_at: str) -> None:
        """Write outcomes: done, rescheduled with a delay, or given up."""
        t, now = self.table, utcnow()
        rows = []
        for a in attempts:
            if a.final_state is not None:
                state, next_at = a.final_state, now
            elif a.ok:
                state, next_at = self.done, now
            elif a.retry_in is None:
                state, next_at = self.gave_up, now
            else:
                state, next_at = self.pending, now + timedelta(seconds=a.retry_in)
            rows.append(
                {
                    "b_id": a.id,
                    "b_state": state,
                    "b_next": next_at,
                    "b_status": a.status,
                    "b_error": (a.error or "")[:500] or None,
                    "b_done": now if a.ok else None,
                    "b_inc": 1 if a.counts else 0,
                    **{f"b_{k}": v for k, v in (a.extra or {}).items()},
                }
            )
        if not rows:
            return
        extra_keys = sorted({k for a in attempts for k in (a.extra or {})})
        values: dict[str, Any] = {
            "state": bindparam("b_state"),
            "attempts": t.c.attempts + bindparam("b_inc"),
            "next_attempt_at": bindparam("b_next"),
            "leased_until": None,
            "last_error": bindparam("b_error"),
            done_at: bindparam("b_done"),
        }
        if "last_status" in t.c:
            values["last_status"] = bindparam("b_status")
        for k in extra_keys:
            values[k] = bindparam(f"b_{k}")
        for row in rows:
            for k in extra_keys:
                row.setdefault(f"b_{k}", None)
        # A delivery cancelled meanwhile (consent withdrawn) stays cancelled, whatever came back.
        statement = (
            update(t)
            .where(self.key == bindparam("b_id"), t.c.state != "cancelled")
            .values(**values)
        )
        async with self.db.transaction() as conn:
            await conn.execute(statement, rows)


class NotificationsRepo:
    """Reads and writes of the API and the senders over the service's tables."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.t = define_tables(db.metadata)
        self.messages = Queue(db, self.t.messages, "message_id", "queued", "sent", "failed")
        self.deliveries = Queue(
            db, self.t.deliveries, "delivery_id", "pending", "delivered", "dead"
        )

    @classmethod
    def at(cls, url: str) -> NotificationsRepo:
        return cls(Database(url, MetaData(), migrations=HISTORY))

    async def open(self) -> None:
        await self.db.create_tables()

    async def close(self) -> None:
        await self.db.close()

    # ------------------------------------------------------------ who is calling

    async def person_by_token(self, token_sha256: str) -> str | None:
        p = self.t.persons
        async with self.db.read() as conn:
            person_id: str | None = await conn.scalar(
                select(p.c.person_id).where(p.c.token_sha256 == token_sha256)
            )
        return person_id

    async def organization_by_key(self, api_key_sha256: str) -> Any | None:
        o = self.t.organizations
        async with self.db.read() as conn:
            return (
                await conn.execute(select(o).where(o.c.api_key_sha256 == api_key_sha256))
            ).first()

    async def organization(self, organization_id: str) -> Any | None:
        o = self.t.organizations
        async with self.db.read() as conn:
            return (
                await conn.execute(select(o).where(o.c.organization_id == organization_id))
            ).first()

    # ------------------------------------------------------------ people

    async def persons_for(self, person_ids: Iterable[str]) -> dict[str, Any]:
        """Address, name and preferences of each person (missing ones are left out)."""
        p, f = self.t.persons, self.t.preferences
        ids = sorted(set(person_ids))
        async with self.db.read() as conn:
            rows = (
                await conn.execute(
                    select(p, f.c.email_enabled, f.c.events)
                    .outerjoin(f, f.c.person_id == p.c.person_id)
                    .where(p.c.person_id.in_(ids))
                )
            ).all()
        return {r.person_id: r for r in rows}

    async def record_titles(self, record_ids: Iterable[str]) -> dict[str, str]:
        r = self.t.records
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(r.c.record_id, r.c.title).where(r.c.record_id.in_(sorted(set(record_ids))))
            )
            return {row.record_id: row.title for row in rows}

    async def preferences(self, person_id: str) -> dict[str, Any]:
        f = self.t.preferences
        async with self.db.read() as conn:
            row = (await conn.execute(select(f).where(f.c.person_id == person_id))).first()
        if row is None:
            return {"email": True, "events": {}}
        return {"email": row.email_enabled, "events": dict(row.events)}

    async def set_preferences(self, person_id: str, email: bool, events: dict[str, bool]) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                self.db.upsert(
                    self.t.preferences, ["person_id"], ["email_enabled", "events", "updated_at"]
                ),
                {
                    "person_id": person_id,
                    "email_enabled": email,
                    "events": events,
                    "updated_at": utcnow(),
                },
            )

    async def messages_of(self, person_id: str, limit: int = 100) -> list[dict[str, Any]]:
        m = self.t.messages
        async with self.db.read() as conn:
            rows = (
                await conn.execute(
                    select(m)
                    .where(m.c.person_id == person_id)
                    .order_by(m.c.created_at.desc(), m.c.message_id)
                    .limit(limit)
                )
            ).all()
        return [
            {
                "message_id": r.message_id,
                "kind": r.kind,
                "state": r.state,
                "attempts": r.attempts,
                "subject": r.subject,
                "created_at": aware(r.created_at),
                "sent_at": aware(r.sent_at),
                "last_error": r.last_error,
            }
            for r in rows
        ]

    # ------------------------------------------------------------ subscriptions and deliveries

    async def add_subscription(
        self, organization_id: str, url: str, event_types: list[str], secret: str
    ) -> dict[str, Any]:
        row = {
            "subscription_id": str(uuid.uuid4()),
            "organization_id": organization_id,
            "url": url,
            "event_types": event_types,
            "secret": secret,
            "active": True,
            "created_at": utcnow(),
        }
        async with self.db.transaction() as conn:
            await conn.execute(self.t.subscriptions.insert().values(**row))
        return row

    async def subscriptions_of(self, organization_id: str) -> list[Any]:
        s = self.t.subscriptions
        async with self.db.read() as conn:
            return list(
                (
                    await conn.execute(
                        select(s)
                        .where(s.c.organization_id == organization_id, s.c.active.is_(True))
                        .order_by(s.c.created_at)
                    )
                ).all()
            )

    async def deactivate_subscription(self, organization_id: str, subscription_id: str) -> bool:
        s = self.t.subscriptions
        async with self.db.transaction() as conn:
            result = await conn.execute(
                update(s)
                .where(
                    s.c.subscription_id == subscription_id,
                    s.c.organization_id == organization_id,
                    s.c.active.is_(True),
                )
                .values(active=False)
            )
        return bool(result.rowcount)

    async def subscriptions(self, ids: Iterable[str]) -> dict[str, Any]:
        s = self.t.subscriptions
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(s.c.subscription_id, s.c.url, s.c.secret, s.c.active).where(
                    s.c.subscription_id.in_(sorted(set(ids)))
                )
            )
            return {r.subscription_id: r for r in rows}

    async def deliveries_of(
        self,
        organization_id: str,
        *,
        state: str | None = None,
        subscription_id: str | None = None,
        before: tuple[datetime, str] | None = None,
        limit: int = 100,
    ) -> list[Any]:
        d = self.t.deliveries
        query = select(d).where(d.c.organization_id == organization_id)
        if state:
            query = query.where(d.c.state == state)
        if subscription_id:
            query = query.where(d.c.subscription_id == subscription_id)
        if before is not None:
            at, delivery_id = before
            query = query.where(
                or_(
                    d.c.created_at < at,
                    and_(d.c.created_at == at, d.c.delivery_id < delivery_id),
                )
            )
        query = query.order_by(d.c.created_at.desc(), d.c.delivery_id.desc()).limit(limit)
        async with self.db.read() as conn:
            return list((await conn.execute(query)).all())

    async def retry_delivery(self, organization_id: str, delivery_id: str) -> Any | None:
        """Queue a delivery again now, with a fresh attempt budget; None if not theirs."""
        d = self.t.deliveries
        async with self.db.transaction() as conn:
            result = await conn.execute(
                update(d)
                .where(d.c.delivery_id == delivery_id, d.c.organization_id == organization_id)
                .values(state="pending", attempts=0, next_attempt_at=utcnow(), leased_until=None)
            )
            if not result.rowcount:
                return None
            return (await conn.execute(select(d).where(d.c.delivery_id == delivery_id))).first()

    async def delivery_counts(self) -> dict[str, int]:
        d = self.t.deliveries
        async with self.db.read() as conn:
            rows = await conn.execute(select(d.c.state, func.count()).group_by(d.c.state))
            return {r[0]: int(r[1]) for r in rows}

    # ------------------------------------------------------------ partner agreements and feeds

    async def set_agreement(self, partner_id: str, elements: list[str]) -> int:
        """Record (or replace) a partner's agreement; returns its version."""
        a = self.t.agreements
        async with self.db.transaction() as conn:
            current = await conn.scalar(select(a.c.version).where(a.c.partner_id == partner_id))
            version = int(current or 0) + 1
            await conn.execute(
                self.db.upsert(a, ["partner_id"], ["elements", "version", "updated_at"]),
                {
                    "partner_id": partner_id,
                    "elements": elements,
                    "version": version,
                    "applied_version": 0,
                    "updated_at": utcnow(),
                },
            )
        return version

    async def feed_entries(self, partner_id: str, since: int, limit: int) -> list[Any]:
        e = self.t.feed_entries
        async with self.db.read() as conn:
            return list(
                (
                    await conn.execute(
                        select(e.c.seq, e.c.body)
                        .where(e.c.partner_id == partner_id, e.c.seq > since)
                        .order_by(e.c.seq)
                        .limit(limit)
                    )
                ).all()
            )
