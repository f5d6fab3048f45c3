"""The partner-feed processor's store: coarse facts per person, consents, and what each partner
was sent. A publication writes the feed entry (the NDJSON export), the ``ler.partner-feed.v1``
event (outbox) and the partner's webhook deliveries in the transaction that derived it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import MetaData, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from ler.avro import AvroCodec
from ler.envelope import event, new_envelope
from ler.outbox import OutgoingMessage, enqueue
from ler.sql import Database
from ler.sqlstore import SqlProcessorStore
from ler.topics import PARTNER_FEED
from services.notifications.domain import PRODUCER, WebhookEvent
from services.notifications.feed import (
    FeedChange,
    FeedPerson,
    FeedRecord,
    FeedRecordStatus,
    PersonFacts,
    digest,
    element_values,
    next_pseudonym,
    pseudonymous_id,
    select_elements,
)
from services.notifications.feed_order import fresh_consents, fresh_statuses, order_tables
from services.notifications.migrations import HISTORY
from services.notifications.store import fan_out
from services.notifications.tables import define_tables
from services.notifications.withdrawals import hold, withdraw

PREFIX = "partner_feed"
FEED_LOCK = 0x1E2F_EED  # one advisory lock: feed writers (processor, agreement refresh) take turns


@dataclass
class Publication:
    entries: list[dict[str, Any]] = field(default_factory=list)
    outgoing: list[OutgoingMessage] = field(default_factory=list)
    webhooks: list[WebhookEvent] = field(default_factory=list)
    #: Retractions (event id) not to be delivered before a publication in flight is done.
    holds: dict[str, datetime] = field(default_factory=dict)


class SqlPartnerFeedStore(SqlProcessorStore[FeedChange]):
    def __init__(self, url: str, secret: bytes, codec: AvroCodec) -> None:
        super().__init__(Database(url, MetaData(), migrations=HISTORY), PREFIX)
        self.t = define_tables(self.db.metadata)
        self.order = order_tables(self.db.metadata)
        self.secret = secret
        self.codec = codec
        self.published = 0
        self.retracted = 0

    def _insert(self, table: Any) -> Any:
        return (postgresql if self.db.is_postgres else sqlite).insert(table)

    async def apply(self, conn: AsyncConnection, changes: list[FeedChange]) -> None:
        t = self.t
        persons = {c.person_id: c for c in changes if isinstance(c, FeedPerson)}
        if persons:
            await conn.execute(
                self.db.upsert(
                    t.feed_persons, ["person_id"], ["birth_year", "county", "education_level"]
                ),
                [
                    {
                        "person_id": p.person_id,
                        "birth_year": p.birth_year,
                        "county": p.county,
                        "education_level": p.education_level,
                    }
                    for p in persons.values()
                ],
            )
        # Only what is newer than the feed holds (consents by occurred_at, statuses by version).
        consents = await fresh_consents(conn, self.db, self.order, changes)
        statuses = {
            s.record_id: s for s in await fresh_statuses(conn, self.db, self.order, changes)
        }
        if consents:
            await conn.execute(
                self.db.upsert(t.feed_consents, ["person_id", "partner_id"], ["granted"]),
                [
                    {"person_id": c.person_id, "partner_id": c.partner_id, "granted": c.granted}
                    for c in consents
                ],
            )
        for change in changes:
            if isinstance(change, FeedRecord):
                stmt = self._insert(t.feed_records).values(
                    record_id=change.record_id,
                    person_id=change.person_id,
                    kind=change.kind,
                    role_category=change.role_category,
                    employment_status=change.employment_status,
                    started_on=change.started_on,
                    hours=change.hours,
                    credential_type=change.credential_type,
                )
                ex = stmt.excluded
                await conn.execute(
                    stmt.on_conflict_do_update(
                        index_elements=["record_id"],
                        set_={
                            "kind": ex.kind,
                            "role_category": ex.role_category,
                            "employment_status": ex.employment_status,
                            "started_on": ex.started_on,
                            "hours": ex.hours,
                            "credential_type": ex.credential_type,
                        },
                    )
                )
            elif isinstance(change, FeedRecordStatus) and statuses.get(change.record_id) is change:
                # The outcome may arrive before the record itself (another topic): keep it.
                stmt = self._insert(t.feed_records).values(
                    record_id=change.record_id,
                    person_id=change.person_id,
                    status=change.status,
                )
                await conn.execute(
                    stmt.on_conflict_do_update(
                        index_elements=["record_id"], set_={"status": stmt.excluded.status}
                    )
                )
        touched = {c.person_id for c in changes}
        if touched:
            await self._lock(conn)
            await self.refresh(conn, touched)

    async def _lock(self, conn: AsyncConnection) -> None:
        if self.db.is_postgres:
            await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": FEED_LOCK})

    async def refresh(
        self, conn: AsyncConnection, person_ids: Iterable[str], partner_id: str | None = None
    ) -> Publication:
        """Publish what changed for these persons to each partner with an agreement: a new
        record while consent is granted, one retraction after it is withdrawn, else nothing."""
        t = self.t
        ids = sorted(set(person_ids))
        query = select(t.agreements.c.partner_id, t.agreements.c.elements)
        if partner_id is not None:
            query = query.where(t.agreements.c.partner_id == partner_id)
        agreements = {r.partner_id: list(r.elements) for r in await conn.execute(query)}
        publication = Publication()
        if not agreements or not ids:
            return publication
        consents = [
            r
            for r in await conn.execute(
                select(t.feed_consents).where(
                    t.feed_consents.c.person_id.in_(ids),
                    t.feed_consents.c.partner_id.in_(sorted(agreements)),
                )
            )
        ]
        if not consents:
            return publication
        published = {
            (r.partner_id, r.person_id): r
            for r in await conn.execute(
                select(t.feed_published).where(t.feed_published.c.person_id.in_(ids))
            )
        }
        facts = await self._facts(conn, {c.person_id for c in consents if c.granted})
        today = datetime.now(UTC).date()
        for consent in sorted(consents, key=lambda c: (c.partner_id, c.person_id)):
            key = (consent.partner_id, consent.person_id)
            before = published.get(key)
            pseudonym = self._pseudonym(consent, before)
            if consent.granted:
                person = facts.get(consent.person_id)
                if person is None:
                    continue  # not enrolled as far as the feed knows yet
                elements = agreements[consent.partner_id]
                values = select_elements(element_values(person, today), elements)
                dig = digest(values, elements)
                if before is not None and before.state == "published" and before.digest == dig:
                    continue
                await self._emit(
                    conn, publication, consent.partner_id, pseudonym, elements, values, dig, key
                )
            elif before is not None and before.state == "published":
                await self._emit(
                    conn, publication, consent.partner_id, pseudonym, None, None, None, key
                )
        await enqueue(conn, self.outbox, publication.outgoing)
        await fan_out(self.db, t, conn, publication.webhooks)
        for event_id, until in publication.holds.items():
            await hold(conn, t, event_id, until)
        return publication

    def _pseudonym(self, consent: Any, before: Any) -> str:
        """The person's current pseudonym for the partner: kept while published, a new one when
        consent is given again after a retraction (docs/partner-feed.md, "Withdrawal")."""
        if before is None:
            return pseudonymous_id(self.secret, consent.partner_id, consent.person_id)
        if before.state == "retracted" and consent.granted:
            return next_pseudonym(
                self.secret, consent.partner_id, consent.person_id, before.pseudonymous_id
            )
        return str(before.pseudonymous_id)

    async def _facts(self, conn: AsyncConnection, person_ids: set[str]) -> dict[str, PersonFacts]:
        if not person_ids:
            return {}
        t, ids = self.t, sorted(person_ids)
        people = {
            r.person_id: r
            for r in await conn.execute(
                select(t.feed_persons).where(t.feed_persons.c.person_id.in_(ids))
            )
        }
        records: dict[str, list[Any]] = {}
        for r in await conn.execute(
            select(t.feed_records).where(t.feed_records.c.person_id.in_(ids))
        ):
            records.setdefault(r.person_id, []).append(r)
        out = {}
        for person_id, p in people.items():
            rows = records.get(person_id, [])
            out[person_id] = PersonFacts(
                birth_year=p.birth_year,
                county=p.county,
                education_level=p.education_level,
                records=tuple(
                    FeedRecord(
                        record_id=r.record_id,
                        person_id=person_id,
                        kind=r.kind,
                        role_category=r.role_category,
                        employment_status=r.employment_status,
                        started_on=r.started_on,
                        hours=r.hours,
                        credential_type=r.credential_type,
                    )
                    for r in rows
                    if r.kind is not None
                ),
                statuses={r.record_id: r.status for r in rows if r.status},
            )
        return out

    async def _emit(
        self,
        conn: AsyncConnection,
        publication: Publication,
        partner_id: str,
        pseudonym: str,
        elements: list[str] | None,
        values: dict[str, Any] | None,
        dig: str | None,
        key: tuple[str, str],
    ) -> None:
        t = self.t
        seq = await self._next_seq(conn, partner_id)
        retraction = values is None
        event_type = "PartnerRecordRetracted" if retraction else "PartnerRecordPublished"
        # A fresh correlation id: nothing in a feed event links back to the person's own events.
        envelope = new_envelope(event_type, PRODUCER)
        fields: dict[str, Any] = {
            "partner_id": partner_id,
            "pseudonymous_id": pseudonym,
            "sequence": seq,
        }
        until = None
        if retraction:
            fields["reason"] = "consent_withdrawn"
            until = await withdraw(conn, t, partner_id, pseudonym)
        else:
            assert values is not None
            assert elements is not None
            fields["elements"] = list(elements)
            fields.update(values)
        record = event(envelope, **fields)
        body: dict[str, Any] = {
            "event_type": event_type,
            "event_id": str(envelope.event_id),
            "occurred_at": envelope.occurred_at.isoformat(),
            "pseudonymous_id": pseudonym,
        }
        if retraction:
            body["reason"] = "consent_withdrawn"
        else:
            assert values is not None
            assert elements is not None
            body["elements"] = list(elements)
            body["data"] = {name: values[name] for name in elements}
        publication.outgoing.append(
            OutgoingMessage(PARTNER_FEED.name, pseudonym.encode(), self.codec.encode(record))
        )
        await conn.execute(
            t.feed_entries.insert().values(
                partner_id=partner_id,
                seq=seq,
                pseudonymous_id=pseudonym,
                event_type=event_type,
                body=orjson.dumps(body).decode(),
                created_at=envelope.occurred_at,
            )
        )
        await conn.execute(
            self.db.upsert(
                t.feed_published,
                ["partner_id", "person_id"],
                ["pseudonymous_id", "state", "digest"],
            ),
            {
                "partner_id": key[0],
                "person_id": key[1],
                "pseudonymous_id": pseudonym,
                "state": "retracted" if retraction else "published",
                "digest": dig,
            },
        )
        publication.webhooks.append(_feed_webhook(partner_id, seq, body))
        if until is not None:
            publication.holds[str(envelope.event_id)] = until
        if retraction:
            self.retracted += 1
        else:
            self.published += 1

    async def _next_seq(self, conn: AsyncConnection, partner_id: str) -> int:
        c = self.t.feed_counters
        await conn.execute(self.db.insert_ignore(c), {"partner_id": partner_id, "seq": 0})
        await conn.execute(update(c).where(c.c.partner_id == partner_id).values(seq=c.c.seq + 1))
        seq = await conn.scalar(select(c.c.seq).where(c.c.partner_id == partner_id))
        return int(seq or 0)

    async def refresh_agreements(self) -> int:
        """Bring partners whose agreement is new or changed up to date; returns how many."""
        t = self.t
        async with self.db.read() as conn:
            due = (
                await conn.execute(
                    select(t.agreements.c.partner_id, t.agreements.c.version).where(
                        t.agreements.c.applied_version < t.agreements.c.version
                    )
                )
            ).all()
        for partner_id, version in due:
            async with self.db.transaction() as conn:
                await self._lock(conn)
                persons = [
                    r.person_id
                    for r in await conn.execute(
                        select(t.feed_consents.c.person_id).where(
                            t.feed_consents.c.partner_id == partner_id
                        )
                    )
                ]
                await self.refresh(conn, persons, partner_id)
                await conn.execute(
                    update(t.agreements)
                    .where(t.agreements.c.partner_id == partner_id)
                    .values(applied_version=version)
                )
        return len(due)


def _feed_webhook(partner_id: str, seq: int, body: dict[str, Any]) -> WebhookEvent:
    """The partner's webhook of one feed entry (its export body, with the cursor)."""
    retraction = body["event_type"] == "PartnerRecordRetracted"
    return WebhookEvent(
        event_id=body["event_id"],
        organization_id=partner_id,
        event_type="partner_feed.record_retracted"
        if retraction
        else "partner_feed.record_published",
        occurred_at=body["occurred_at"],
        data={"cursor": str(seq), **{k: v for k, v in body.items() if k != "event_type"}},
    )
