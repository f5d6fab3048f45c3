"""Enrollment's own state (organizations, persons, consents, idempotency keys) and its outbox."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    select,
)
from sqlalchemy.exc import IntegrityError

from ler.outbox import OutgoingMessage, enqueue, outbox_table
from ler.sql import Database
from services.enrollment.domain import IdentityKeys
from services.enrollment.migrations import HISTORY


@dataclass(frozen=True, slots=True)
class Organization:
    organization_id: str
    name: str
    kind: str


@dataclass(frozen=True, slots=True)
class StoredResponse:
    request_sha256: str
    status_code: int
    body: dict[str, Any]


class IdempotencyConflict(Exception):
    """The key was used by another request in the meantime."""


class EnrollmentStore:
    def __init__(self, url: str) -> None:
        metadata = MetaData()
        self.db = Database(url, metadata, migrations=HISTORY)
        self.organizations = Table(
            "enrollment_organizations",
            metadata,
            Column("organization_id", String(36), primary_key=True),
            Column("name", String(300), nullable=False),
            Column("kind", String(40), nullable=False),
            Column("api_key_sha256", String(64), nullable=False, unique=True),
            Column("created_at", DateTime(timezone=True), nullable=False),
        )
        self.persons = Table(
            "enrollment_persons",
            metadata,
            Column("person_id", String(36), primary_key=True),
            Column("given_name", String(100), nullable=False),
            Column("family_name", String(100), nullable=False),
            Column("email", String(254), nullable=False),
            Column("birth_date", Date, nullable=False),
            Column("county", String(200)),
            Column("education_level", String(40)),
            Column("demographics", JSON, nullable=False),
            Column("email_key", String(254), nullable=False, index=True),
            Column("name_birth_key", String(300), nullable=False, index=True),
            Column("access_token_sha256", String(64), nullable=False, unique=True),
            Column("possible_duplicate_of", String(36)),
            Column("created_at", DateTime(timezone=True), nullable=False),
        )
        self.consents = Table(
            "enrollment_consents",
            metadata,
            Column("person_id", String(36), primary_key=True),
            Column("partner_id", String(36), primary_key=True),
            Column("granted", Boolean, nullable=False),
            Column("updated_at", DateTime(timezone=True), nullable=False),
        )
        self.idempotency = Table(
            "enrollment_idempotency",
            metadata,
            Column("organization_id", String(36), primary_key=True),
            Column("key", String(255), primary_key=True),
            Column("request_sha256", String(64), nullable=False),
            Column("status_code", Integer, nullable=False),
            Column("body", JSON, nullable=False),
            Column("created_at", DateTime(timezone=True), nullable=False),
            Index("enrollment_idempotency_created", "created_at"),
        )
        self.affiliation_rows = Table(
            "enrollment_affiliations",
            metadata,
            Column("person_id", String(36), primary_key=True),
            Column("organization_id", String(36), primary_key=True),
            Column("added_by", String(20), nullable=False),
            Column("added_at", DateTime(timezone=True), nullable=False),
            Index("enrollment_affiliations_organization", "organization_id", "person_id"),
        )
        self.outbox = outbox_table(metadata, "enrollment")

    async def open(self) -> None:
        await self.db.create_tables()

    async def close(self) -> None:
        await self.db.close()

    async def add_organization(
        self, org: Organization, api_key_sha256: str, outgoing: OutgoingMessage
    ) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                self.organizations.insert().values(
                    organization_id=org.organization_id,
                    name=org.name,
                    kind=org.kind,
                    api_key_sha256=api_key_sha256,
                    created_at=datetime.now(UTC),
                )
            )
            await enqueue(conn, self.outbox, [outgoing])

    async def organization_by_key(self, api_key_sha256: str) -> Organization | None:
        t = self.organizations
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    select(t.c.organization_id, t.c.name, t.c.kind).where(
                        t.c.api_key_sha256 == api_key_sha256
                    )
                )
            ).first()
        return Organization(row.organization_id, row.name, row.kind) if row else None

    async def organization(self, organization_id: str) -> Organization | None:
        t = self.organizations
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    select(t.c.organization_id, t.c.name, t.c.kind).where(
                        t.c.organization_id == organization_id
                    )
                )
            ).first()
        return Organization(row.organization_id, row.name, row.kind) if row else None

    async def likely_duplicate(self, keys: IdentityKeys) -> str | None:
        t = self.persons
        async with self.db.read() as conn:
            person_id: str | None = await conn.scalar(
                select(t.c.person_id)
                .where((t.c.email_key == keys.email) | (t.c.name_birth_key == keys.name_birth))
                .order_by(t.c.created_at)
                .limit(1)
            )
        return person_id

    async def add_person(
        self,
        person: dict[str, Any],
        keys: IdentityKeys,
        token_sha256: str,
        outgoing: OutgoingMessage,
    ) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                self.persons.insert().values(
                    **person,
                    email_key=keys.email,
                    name_birth_key=keys.name_birth,
                    access_token_sha256=token_sha256,
                    created_at=datetime.now(UTC),
                )
            )
            await enqueue(conn, self.outbox, [outgoing])

    async def person_by_token(self, token_sha256: str) -> str | None:
        t = self.persons
        async with self.db.read() as conn:
            person_id: str | None = await conn.scalar(
                select(t.c.person_id).where(t.c.access_token_sha256 == token_sha256)
            )
        return person_id

    async def enrolled(self, person_ids: set[str]) -> set[str]:
        """Which of these ids are enrolled persons."""
        t = self.persons
        found: set[str] = set()
        ids = sorted(person_ids)
        async with self.db.read() as conn:
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                rows = await conn.execute(select(t.c.person_id).where(t.c.person_id.in_(chunk)))
                found.update(r.person_id for r in rows)
        return found

    async def set_consent(
        self, person_id: str, partner_id: str, granted: bool, outgoing: OutgoingMessage
    ) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                self.db.upsert(
                    self.consents, ["person_id", "partner_id"], ["granted", "updated_at"]
                ),
                {
                    "person_id": person_id,
                    "partner_id": partner_id,
                    "granted": granted,
                    "updated_at": datetime.now(UTC),
                },
            )
            await enqueue(conn, self.outbox, [outgoing])

    async def stored_response(self, organization_id: str, key: str) -> StoredResponse | None:
        t = self.idempotency
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    select(t.c.request_sha256, t.c.status_code, t.c.body).where(
                        t.c.organization_id == organization_id, t.c.key == key
                    )
                )
            ).first()
        return StoredResponse(row.request_sha256, row.status_code, row.body) if row else None

    async def accept(
        self,
        outgoing: list[OutgoingMessage],
        *,
        idempotency: tuple[str, str, str] | None,
        body: dict[str, Any],
    ) -> None:
        """Store accepted records' events (and the idempotent answer) in one transaction.

        ``idempotency`` is ``(organization_id, key, request_sha256)``; raises
        :class:`IdempotencyConflict` if that key was taken concurrently.
        """
        try:
            async with self.db.transaction() as conn:
                if idempotency is not None:
                    organization_id, key, request_sha256 = idempotency
                    await conn.execute(
                        self.idempotency.insert().values(
                            organization_id=organization_id,
                            key=key,
                            request_sha256=request_sha256,
                            status_code=202,
                            body=body,
                            created_at=datetime.now(UTC),
                        )
                    )
                await enqueue(conn, self.outbox, outgoing)
        except IntegrityError as exc:
            raise IdempotencyConflict from exc

    async def set_api_key(
        self, organization_id: str, api_key_sha256: str, outgoing: OutgoingMessage
    ) -> bool:
        """Replace the organization's key hash (and publish it); False if no such organization."""
        t = self.organizations
        async with self.db.transaction() as conn:
            changed = await conn.execute(
                t.update()
                .where(t.c.organization_id == organization_id)
                .values(api_key_sha256=api_key_sha256)
            )
            if not changed.rowcount:
                return False
            await enqueue(conn, self.outbox, [outgoing])
        return True

    async def set_person_token(
        self, person_id: str, token_sha256: str, outgoing: OutgoingMessage
    ) -> bool:
        """Replace the person's access token hash (and publish it); False if no such person."""
        t = self.persons
        async with self.db.transaction() as conn:
            changed = await conn.execute(
                t.update()
                .where(t.c.person_id == person_id)
                .values(access_token_sha256=token_sha256)
            )
            if not changed.rowcount:
                return False
            await enqueue(conn, self.outbox, [outgoing])
        return True

    async def add_affiliation(
        self, person_id: str, organization_id: str, added_by: str, outgoing: OutgoingMessage
    ) -> bool:
        """Affiliate the organization with the person; False (and nothing published) if it was."""
        try:
            async with self.db.transaction() as conn:
                await conn.execute(
                    self.affiliation_rows.insert().values(
                        person_id=person_id,
                        organization_id=organization_id,
                        added_by=added_by,
                        added_at=datetime.now(UTC),
                    )
                )
                await enqueue(conn, self.outbox, [outgoing])
        except IntegrityError:
            return False
        return True

    async def remove_affiliation(
        self, person_id: str, organization_id: str, outgoing: OutgoingMessage
    ) -> bool:
        """End an affiliation; False (and nothing published) if there was none."""
        t = self.affiliation_rows
        async with self.db.transaction() as conn:
            gone = await conn.execute(
                t.delete().where(t.c.person_id == person_id, t.c.organization_id == organization_id)
            )
            if not gone.rowcount:
                return False
            await enqueue(conn, self.outbox, [outgoing])
        return True

    async def affiliations(self, person_id: str) -> list[dict[str, Any]]:
        a, o = self.affiliation_rows, self.organizations
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(a.c.organization_id, o.c.name, o.c.kind, a.c.added_by, a.c.added_at)
                .join(o, o.c.organization_id == a.c.organization_id)
                .where(a.c.person_id == person_id)
                .order_by(a.c.added_at, a.c.organization_id)
            )
            # SQLite gives back naive datetimes; they were written in UTC.
            return [
                {
                    **row._mapping,
                    "added_at": row.added_at.replace(tzinfo=row.added_at.tzinfo or UTC),
                }
                for row in rows
            ]

    async def affiliated_persons(self, organization_id: str, person_ids: set[str]) -> set[str]:
        """Which of these persons the organization is affiliated with."""
        t = self.affiliation_rows
        found: set[str] = set()
        ids = sorted(person_ids)
        async with self.db.read() as conn:
            for start in range(0, len(ids), 500):
                rows = await conn.execute(
                    select(t.c.person_id).where(
                        t.c.organization_id == organization_id,
                        t.c.person_id.in_(ids[start : start + 500]),
                    )
                )
                found.update(r.person_id for r in rows)
        return found
