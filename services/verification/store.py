"""Verification state in SQL: records and their review state, credentials, status lists, appeals,
reviewers and the audit trail, with two outboxes (the processor's and the API's).

Every transition (routing, issuing, review decision, revocation, appeal) runs in one transaction
that updates the record's state, bumps its ``version``, writes an audit entry and enqueues the
event: nothing half-written, nothing published that did not happen.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    select,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from ler.access_sql import apply_access_changes
from ler.avro import AvroCodec
from ler.envelope import event as new_event
from ler.envelope import new_envelope
from ler.outbox import OutgoingMessage, enqueue, outbox_table
from ler.sql import Database
from ler.sqlstore import SqlProcessorStore
from ler.topics import VERIFICATION
from services.verification.credentials import CredentialInput, Issuer, credential_type_of
from services.verification.domain import (
    APPEAL,
    AUTO,
    AWAITING_ISSUER,
    PENDING,
    PRODUCER,
    REJECTED,
    REVIEW,
    REVOKED,
    VERIFIED,
    OrganizationKnown,
    PersonKnown,
    Policy,
    RecordSubmitted,
    RoutingSubject,
    TransitionError,
    VerificationChange,
    appeal_of,
    check_appeal,
    check_appeal_decision,
    check_review_decision,
    check_revocation,
    record_affiliated,
)
from services.verification.migrations import HISTORY
from services.verification.read_log import reads_table as staff_reads_table
from services.verification.statuslists import REVOCATION, allocate_indices, purposes_table
from services.verification.suspension_store import (
    allocate as allocate_suspensions,
)
from services.verification.suspension_store import (
    change as change_suspension,
)
from services.verification.suspension_store import (
    suspended_indices,
    suspensions_table,
)

PREFIX = "verification"


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling the API: ``admin``, ``reviewer:<id>``, ``organization:<id>`` or a person."""

    actor: str
    person_id: str | None = None
    organization_id: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.actor == "admin"


class VerificationStore(SqlProcessorStore[VerificationChange]):
    """The verification service's database (SQLite embedded, PostgreSQL in production)."""

    def __init__(self, url: str, codec: AvroCodec, issuer: Issuer, policy: Policy) -> None:
        metadata = MetaData()
        super().__init__(Database(url, metadata, migrations=HISTORY), PREFIX)
        self.codec = codec
        self.issuer = issuer
        self.policy = policy
        self.status_list_size = 131_072
        # ``ler replay verification``: the inputs give persons, organizations and records as
        # submitted; routing and issuing are not redone (their outcomes come from the service's
        # own ler.verification.v1, services/verification/rebuild.py).
        self.replaying = False
        self.api_outbox = outbox_table(metadata, f"{PREFIX}_api")
        self.persons = Table(
            "verification_persons",
            metadata,
            Column("person_id", String(36), primary_key=True),
            Column("token_sha256", String(64), nullable=False, unique=True),
        )
        self.organizations = Table(
            "verification_organizations",
            metadata,
            Column("organization_id", String(36), primary_key=True),
            Column("name", String(300), nullable=False),
            Column("kind", String(40), nullable=False),
            Column("api_key_sha256", String(64), nullable=True, unique=True),
        )
        self.records = Table(
            "verification_records",
            metadata,
            Column("record_id", String(36), primary_key=True),
            Column("person_id", String(36), nullable=False),
            Column("organization_id", String(36), nullable=True),
            Column("submitter_kind", String(20), nullable=False),
            Column("record_type", String(20), nullable=False),
            Column("data", JSON, nullable=False),
            Column("submitted_at", DateTime(timezone=True), nullable=False),
            Column("correlation_id", String(100), nullable=False),
            Column("state", String(20), nullable=False),
            Column("queue", String(30), nullable=True),
            Column("policy_rule", String(100), nullable=True),
            Column("version", Integer, nullable=False),
            Column("reason_code", String(40), nullable=True),
            Column("note", Text, nullable=True),
            Column("decided_by", String(80), nullable=True),
            Column("decided_at", DateTime(timezone=True), nullable=True),
            Column("decision_version", Integer, nullable=True),
            Column("credential_id", String(36), nullable=True),
            Column("updated_at", DateTime(timezone=True), nullable=False),
            Index("verification_records_state", "state", "submitted_at"),
            Index("verification_records_awaiting", "organization_id", "state"),
            Index("verification_records_person", "person_id"),
        )
        self.credentials = Table(
            "verification_credentials",
            metadata,
            Column("credential_id", String(36), primary_key=True),
            # Not unique: an upheld appeal of a revocation gives the record a new credential.
            Column("record_id", String(36), nullable=False, index=True),
            Column("person_id", String(36), nullable=False),
            Column("organization_id", String(36), nullable=True),
            Column("credential_type", String(40), nullable=False),
            Column("document", JSON, nullable=False),
            Column("list_id", String(20), nullable=False),
            Column("status_index", Integer, nullable=False),
            Column("revoked", Boolean, nullable=False),
            Column("revoked_reason", Text, nullable=True),
            Column("issued_at", DateTime(timezone=True), nullable=False),
            Index("verification_credentials_revoked", "list_id", "revoked"),
        )
        self.status_lists = Table(
            "verification_status_lists",
            metadata,
            Column("list_id", String(20), primary_key=True),
            Column("size", Integer, nullable=False),
            Column("used", Integer, nullable=False),
            Column("created_at", DateTime(timezone=True), nullable=False),
        )
        self.status_entries = Table(
            "verification_status_entries",
            metadata,
            Column("list_id", String(20), primary_key=True),
            Column("status_index", Integer, primary_key=True, autoincrement=False),
            Column("credential_id", String(36), nullable=False),
        )
        self.list_purposes = purposes_table(metadata)
        self.suspensions = suspensions_table(metadata)
        self.appeals = Table(
            "verification_appeals",
            metadata,
            Column("appeal_id", String(36), primary_key=True),
            Column("record_id", String(36), nullable=False),
            Column("person_id", String(36), nullable=False),
            Column("appeal_of", String(20), nullable=False),
            Column("contested_version", Integer, nullable=False),
            Column("statement", Text, nullable=True),
            Column("state", String(20), nullable=False),
            Column("filed_at", DateTime(timezone=True), nullable=False),
            Column("decided_by", String(80), nullable=True),
            Column("decided_at", DateTime(timezone=True), nullable=True),
            Column("note", Text, nullable=True),
            UniqueConstraint("record_id", "contested_version"),
            Index("verification_appeals_state", "state", "filed_at"),
        )
        self.reviewers = Table(
            "verification_reviewers",
            metadata,
            Column("reviewer_id", String(36), primary_key=True),
            Column("name", String(200), nullable=False),
            Column("token_sha256", String(64), nullable=False, unique=True),
            Column("created_at", DateTime(timezone=True), nullable=False),
        )
        self.reads = staff_reads_table(metadata)  # reads by staff (services/verification/staff)
        self.audit = Table(
            "verification_audit",
            metadata,
            Column(
                "id",
                BigInteger().with_variant(Integer, "sqlite"),
                primary_key=True,
                autoincrement=True,
            ),
            Column("record_id", String(36), nullable=False),
            Column("event_type", String(40), nullable=False),
            Column("actor", String(80), nullable=False),
            Column("at", DateTime(timezone=True), nullable=False),
            Column("detail", JSON, nullable=False),
            Index("verification_audit_record", "record_id", "id"),
        )

    # --- the processor's side: apply input events --------------------------------------------

    async def apply(self, conn: AsyncConnection, changes: list[VerificationChange]) -> None:
        out: list[OutgoingMessage] = []
        persons = {c.person_id: c for c in changes if isinstance(c, PersonKnown)}
        if persons:
            await conn.execute(
                self.db.insert_ignore(self.persons),
                [
                    {"person_id": p.person_id, "token_sha256": p.token_sha256}
                    for p in persons.values()
                ],
            )
        # Organizations first: records of this batch then see them (the outcome does not depend
        # on how the topics interleave).
        for change in changes:
            if isinstance(change, OrganizationKnown):
                await self._organization_known(conn, change, out)
        # A reset token or a rotated or revoked key: the API stops accepting the old one.
        await apply_access_changes(
            conn,
            changes,
            persons=(self.persons, "token_sha256"),
            organizations=(self.organizations, "api_key_sha256"),
        )
        records = [c for c in changes if isinstance(c, RecordSubmitted)]
        if records:
            await self._records_submitted(conn, records, out)
        await enqueue(conn, self.outbox, out)

    async def _organization_known(
        self, conn: AsyncConnection, org: OrganizationKnown, out: list[OutgoingMessage]
    ) -> None:
        values = {
            "organization_id": org.organization_id,
            "name": org.name,
            "kind": org.kind,
            "api_key_sha256": org.api_key_sha256,
        }
        await conn.execute(
            self.db.upsert(
                self.organizations, ["organization_id"], ["name", "kind", "api_key_sha256"]
            ),
            values,
        )
        if self.replaying:
            return
        r = self.records
        waiting = (
            (
                await conn.execute(
                    select(r).where(
                        r.c.organization_id == org.organization_id, r.c.state == AWAITING_ISSUER
                    )
                )
            )
            .mappings()
            .all()
        )
        for row in waiting:
            await self._route(conn, dict(row), org.kind, org.name, out)

    async def _records_submitted(
        self, conn: AsyncConnection, records: list[RecordSubmitted], out: list[OutgoingMessage]
    ) -> None:
        """Route a batch of new records in a few statements: the hot path of auto-verification."""
        r, o = self.records, self.organizations
        unique = list({rec.record_id: rec for rec in reversed(records)}.values())[::-1]
        ids = [rec.record_id for rec in unique]
        known = set(
            (await conn.execute(select(r.c.record_id).where(r.c.record_id.in_(ids)))).scalars()
        )
        fresh = [rec for rec in unique if rec.record_id not in known]  # duplicates change nothing
        if not fresh:
            return
        org_ids = {rec.organization_id for rec in fresh if rec.organization_id}
        orgs = {
            row.organization_id: (row.kind, row.name)
            for row in await conn.execute(
                select(o.c.organization_id, o.c.kind, o.c.name).where(
                    o.c.organization_id.in_(org_ids)
                )
            )
        }
        now = datetime.now(UTC)
        rows: list[dict[str, Any]] = []
        auto: list[tuple[dict[str, Any], str | None]] = []
        for rec in fresh:
            row = {
                "record_id": rec.record_id,
                "person_id": rec.person_id,
                "organization_id": rec.organization_id,
                "submitter_kind": rec.submitter_kind,
                "record_type": rec.record_type,
                "data": rec.data,
                "submitted_at": rec.submitted_at,
                "correlation_id": rec.correlation_id,
                "state": AWAITING_ISSUER,
                "queue": None,
                "policy_rule": None,
                "version": 0,
                "reason_code": None,
                "note": None,
                "decided_by": None,
                "decided_at": None,
                "decision_version": None,
                "credential_id": None,
                "updated_at": now,
            }
            rows.append(row)
            if self.replaying:
                continue  # its routing and outcome come from ler.verification.v1
            if rec.organization_id is not None and rec.organization_id not in orgs:
                continue  # routed when its OrganizationRegistered arrives
            kind, name = orgs.get(rec.organization_id or "", (None, None))
            routing = self.policy.route(
                RoutingSubject(
                    rec.submitter_kind,
                    rec.record_type,
                    kind,
                    rec.organization_id,
                    affiliated=rec.affiliated,
                )
            )
            row.update(queue=routing.queue, policy_rule=routing.rule, version=1)
            if routing.queue == AUTO:
                auto.append((row, name))
            else:
                row["state"] = PENDING
        issued = await self._issue_many(conn, auto, "system", AUTO, now)
        await conn.execute(r.insert(), rows)
        audit = []
        for row in rows:
            if row["state"] == PENDING:
                audit.append(
                    self._audit_row(
                        row,
                        "RecordQueuedForReview",
                        "system",
                        now,
                        {"policy_rule": row["policy_rule"]},
                    )
                )
                out.append(
                    self._event(
                        "RecordQueuedForReview",
                        row,
                        "system",
                        1,
                        queue=REVIEW,
                        policy_rule=row["policy_rule"],
                    )
                )
        for row, credential_type, document in issued:
            audit.append(
                self._audit_row(
                    row,
                    "RecordVerified",
                    "system",
                    now,
                    {"credential_id": row["credential_id"], "queue": AUTO},
                )
            )
            out.append(
                self._event(
                    "RecordVerified",
                    row,
                    "system",
                    1,
                    queue=AUTO,
                    credential_id=row["credential_id"],
                    credential_type=credential_type,
                    credential=_json(document),
                )
            )
        if audit:
            await conn.execute(self.audit.insert(), audit)

    @staticmethod
    def _audit_row(
        row: dict[str, Any], event_type: str, actor: str, at: datetime, detail: dict[str, Any]
    ) -> dict[str, Any]:
        return {
            "record_id": row["record_id"],
            "event_type": event_type,
            "actor": actor,
            "at": at,
            "detail": detail,
        }

    async def _issue_many(
        self,
        conn: AsyncConnection,
        items: list[tuple[dict[str, Any], str | None]],
        actor: str,
        queue: str,
        now: datetime,
    ) -> list[tuple[dict[str, Any], str, dict[str, Any]]]:
        """Sign credentials for new records (rows not yet inserted): marks each row verified."""
        if not items:
            return []
        credential_ids = [str(uuid.uuid4()) for _ in items]
        slots = await self._allocate_indices(conn, credential_ids, now)
        held = await allocate_suspensions(self, conn, credential_ids, now)
        issued = []
        credentials = []
        for (row, org_name), credential_id, (list_id, index), hold in zip(
            items, credential_ids, slots, held, strict=True
        ):
            document = self.issuer.issue(
                self._credential_input(row, credential_id, org_name),
                list_id,
                index,
                now,
                suspension=hold,
            )
            credential_type = credential_type_of(row["record_type"])
            credentials.append(
                self._credential_row(
                    row, credential_id, credential_type, document, list_id, index, now
                )
            )
            row.update(
                state=VERIFIED, credential_id=credential_id, decided_by=actor, decided_at=now
            )
            issued.append((row, credential_type, document))
        await conn.execute(self.credentials.insert(), credentials)
        return issued

    @staticmethod
    def _credential_input(
        row: dict[str, Any], credential_id: str, org_name: str | None
    ) -> CredentialInput:
        return CredentialInput(
            credential_id=credential_id,
            record_id=row["record_id"],
            person_id=row["person_id"],
            record_type=row["record_type"],
            data=row["data"],
            organization_id=row["organization_id"],
            organization_name=org_name,
        )

    @staticmethod
    def _credential_row(
        row: dict[str, Any],
        credential_id: str,
        credential_type: str,
        document: dict[str, Any],
        list_id: str,
        index: int,
        now: datetime,
    ) -> dict[str, Any]:
        return {
            "credential_id": credential_id,
            "record_id": row["record_id"],
            "person_id": row["person_id"],
            "organization_id": row["organization_id"],
            "credential_type": credential_type,
            "document": document,
            "list_id": list_id,
            "status_index": index,
            "revoked": False,
            "revoked_reason": None,
            "issued_at": now,
        }

    async def _route(
        self,
        conn: AsyncConnection,
        row: dict[str, Any],
        org_kind: str | None,
        org_name: str | None,
        out: list[OutgoingMessage],
    ) -> None:
        routing = self.policy.route(
            RoutingSubject(
                submitter_kind=row["submitter_kind"],
                record_type=row["record_type"],
                organization_kind=org_kind,
                organization_id=row["organization_id"],
                affiliated=record_affiliated(row["submitter_kind"], row["data"]),
            )
        )
        await conn.execute(
            self.records.update()
            .where(self.records.c.record_id == row["record_id"])
            .values(queue=routing.queue, policy_rule=routing.rule)
        )
        row = {**row, "queue": routing.queue, "policy_rule": routing.rule}
        if routing.queue == AUTO:
            await self._issue(conn, row, "system", AUTO, org_name, out)
            return
        version = await self._transition(
            conn,
            row,
            "RecordQueuedForReview",
            "system",
            {"state": PENDING},
            {"policy_rule": routing.rule},
        )
        out.append(
            self._event(
                "RecordQueuedForReview",
                row,
                "system",
                version,
                queue=REVIEW,
                policy_rule=routing.rule,
            )
        )

    # --- transitions shared by the processor and the API -------------------------------------

    async def _transition(
        self,
        conn: AsyncConnection,
        row: dict[str, Any],
        event_type: str,
        actor: str,
        values: dict[str, Any],
        detail: dict[str, Any],
        at: datetime | None = None,
    ) -> int:
        """Bump the record's version, set ``values``, write the audit entry; returns the version.

        ``at`` (default now) is the one time of the transition: ``updated_at``, the audit entry
        and the event's ``occurred_at`` (``ler replay verification`` takes the times from there).
        """
        now = at or datetime.now(UTC)
        r = self.records
        version: int = row["version"] + 1
        await conn.execute(
            r.update()
            .where(r.c.record_id == row["record_id"])
            .values(version=version, updated_at=now, **values)
        )
        await conn.execute(
            self.audit.insert().values(
                record_id=row["record_id"],
                event_type=event_type,
                actor=actor,
                at=now,
                detail=detail,
            )
        )
        row["version"] = version
        row.update(values, updated_at=now)
        return version

    def _event(
        self, event_type: str, row: dict[str, Any], actor: str, version: int, **payload: Any
    ) -> OutgoingMessage:
        envelope = new_envelope(
            event_type,
            PRODUCER,
            correlation_id=row["correlation_id"],
            occurred_at=row["updated_at"],  # the transition's time, as stored
        )
        record = new_event(
            envelope,
            person_id=row["person_id"],
            record_id=row["record_id"],
            organization_id=row["organization_id"],
            record_type=row["record_type"],
            actor=actor,
            record_version=version,
            submitted_at=row["submitted_at"],
            **payload,
        )
        return OutgoingMessage(
            VERIFICATION.name, row["person_id"].encode(), self.codec.encode(record)
        )

    async def _allocate_indices(
        self, conn: AsyncConnection, credential_ids: list[str], now: datetime
    ) -> list[tuple[str, int]]:
        return await allocate_indices(
            self.db,
            self.status_lists,
            self.status_entries,
            conn,
            credential_ids,
            self.status_list_size,
            self.list_purposes,
            now=now,
        )

    async def _issue(
        self,
        conn: AsyncConnection,
        row: dict[str, Any],
        actor: str,
        queue: str,
        org_name: str | None,
        out: list[OutgoingMessage],
    ) -> str:
        credential_id = str(uuid.uuid4())
        now = datetime.now(UTC)  # issuance, the list opened for it, the transition: one time
        ((list_id, index),) = await self._allocate_indices(conn, [credential_id], now)
        (hold,) = await allocate_suspensions(self, conn, [credential_id], now)
        if org_name is None and row["organization_id"] is not None:
            o = self.organizations
            org_name = await conn.scalar(
                select(o.c.name).where(o.c.organization_id == row["organization_id"])
            )
        document = self.issuer.issue(
            self._credential_input(row, credential_id, org_name),
            list_id,
            index,
            now,
            suspension=hold,
        )
        credential_type = credential_type_of(row["record_type"])
        await conn.execute(
            self.credentials.insert().values(
                **self._credential_row(
                    row, credential_id, credential_type, document, list_id, index, now
                )
            )
        )
        version = await self._transition(
            conn,
            row,
            "RecordVerified",
            actor,
            {
                "state": VERIFIED,
                "credential_id": credential_id,
                "decided_by": actor,
                "decided_at": now,
            },
            {"credential_id": credential_id, "queue": queue},
            now,
        )
        out.append(
            self._event(
                "RecordVerified",
                row,
                actor,
                version,
                queue=queue,
                credential_id=credential_id,
                credential_type=credential_type,
                credential=_json(document),
            )
        )
        return credential_id

    async def _record_for_update(
        self, conn: AsyncConnection, record_id: str
    ) -> dict[str, Any] | None:
        query = select(self.records).where(self.records.c.record_id == record_id)
        if self.db.is_postgres:
            query = query.with_for_update()
        row = (await conn.execute(query)).mappings().first()
        return dict(row) if row else None

    # --- the API's side: commands, each one transaction --------------------------------------

    async def decide_review(
        self, record_id: str, decision: str, reason_code: str | None, note: str | None, actor: str
    ) -> dict[str, Any]:
        out: list[OutgoingMessage] = []
        async with self.db.transaction() as conn:
            row = await self._record_for_update(conn, record_id)
            check_review_decision(row["state"] if row else None, decision, reason_code)
            assert row is not None
            if decision == "verified":
                credential_id = await self._issue(conn, row, actor, REVIEW, None, out)
                result = {"state": VERIFIED, "credential_id": credential_id}
            else:
                now = datetime.now(UTC)
                version = await self._transition(
                    conn,
                    row,
                    "RecordRejected",
                    actor,
                    {
                        "state": REJECTED,
                        "reason_code": reason_code,
                        "note": note,
                        "decided_by": actor,
                        "decided_at": now,
                        "decision_version": row["version"] + 1,
                    },
                    {"reason_code": reason_code, "note": note},
                    now,
                )
                out.append(
                    self._event(
                        "RecordRejected",
                        row,
                        actor,
                        version,
                        queue=REVIEW,
                        reason_code=reason_code,
                        note=note,
                    )
                )
                result = {"state": REJECTED, "reason_code": reason_code or ""}
            await enqueue(conn, self.api_outbox, out)
        return {"record_id": record_id, **result}

    async def file_appeal(
        self, record_id: str, person_id: str, statement: str | None
    ) -> dict[str, Any]:
        out: list[OutgoingMessage] = []
        async with self.db.transaction() as conn:
            row = await self._record_for_update(conn, record_id)
            a = self.appeals
            already = False
            if row is not None and row["decision_version"] is not None:
                count = await conn.scalar(
                    select(func.count())
                    .select_from(a)
                    .where(
                        a.c.record_id == record_id,
                        a.c.contested_version == row["decision_version"],
                    )
                )
                already = int(count or 0) > 0
            contested = check_appeal(
                row["state"] if row else None, row["person_id"] if row else None, person_id, already
            )
            assert row is not None
            appeal_id = str(uuid.uuid4())
            now = datetime.now(UTC)
            await conn.execute(
                a.insert().values(
                    appeal_id=appeal_id,
                    record_id=record_id,
                    person_id=person_id,
                    appeal_of=contested,
                    contested_version=row["decision_version"],
                    statement=statement,
                    state="pending",
                    filed_at=now,
                )
            )
            version = await self._transition(
                conn,
                row,
                "AppealFiled",
                "person",
                {},
                {"appeal_id": appeal_id, "statement": statement},
                now,
            )
            out.append(
                self._event(
                    "AppealFiled",
                    row,
                    "person",
                    version,
                    queue=APPEAL,
                    appeal_id=appeal_id,
                    appeal_of=contested,
                    statement=statement,
                )
            )
            await enqueue(conn, self.api_outbox, out)
        return {
            "appeal_id": appeal_id,
            "record_id": record_id,
            "appeal_of": contested,
            "state": "pending",
        }

    async def decide_appeal(
        self, appeal_id: str, decision: str, note: str | None, actor: str
    ) -> dict[str, Any]:
        out: list[OutgoingMessage] = []
        async with self.db.transaction() as conn:
            a = self.appeals
            query = select(a).where(a.c.appeal_id == appeal_id)
            if self.db.is_postgres:
                query = query.with_for_update()
            appeal = (await conn.execute(query)).mappings().first()
            row = await self._record_for_update(conn, appeal["record_id"]) if appeal else None
            check_appeal_decision(
                appeal["state"] if appeal else None, actor, (row or {}).get("decided_by") or ""
            )
            assert appeal is not None
            assert row is not None
            if appeal_of(row["state"]) != appeal["appeal_of"]:
                raise TransitionError(409, "the record changed since the appeal was filed")
            now = datetime.now(UTC)
            await conn.execute(
                a.update()
                .where(a.c.appeal_id == appeal_id)
                .values(state=decision, decided_by=actor, decided_at=now, note=note)
            )
            version = await self._transition(
                conn,
                row,
                "AppealDecided",
                actor,
                {},
                {"appeal_id": appeal_id, "decision": decision, "note": note},
                now,
            )
            out.append(
                self._event(
                    "AppealDecided",
                    row,
                    actor,
                    version,
                    queue=APPEAL,
                    appeal_id=appeal_id,
                    appeal_of=appeal["appeal_of"],
                    decision=decision,
                    note=note,
                    filed_at=appeal["filed_at"],
                )
            )
            result: dict[str, Any] = {"appeal_id": appeal_id, "decision": decision}
            if decision == "upheld" and appeal["appeal_of"] == "rejection":
                values = {"reason_code": None, "note": None}
                await conn.execute(
                    self.records.update()
                    .where(self.records.c.record_id == row["record_id"])
                    .values(**values)
                )
                result["credential_id"] = await self._issue(conn, row, actor, APPEAL, None, out)
            elif decision == "upheld" and appeal["appeal_of"] == "suspension":
                # A suspension is reversible: the same credential, its suspension bit cleared.
                lifted, messages = await change_suspension(
                    self, conn, row["credential_id"], False, ("appeal_upheld", note), actor
                )
                out.extend(messages)
                row["state"] = lifted["state"]
                result["credential_id"] = lifted["credential_id"]
            elif decision == "upheld":
                # Revocation is final (Bitstring Status List): the revoked credential keeps its
                # bit, and the record gets a new credential with a new index.
                result["credential_id"] = await self._issue(conn, row, actor, APPEAL, None, out)
                result["replaces"] = row["credential_id"]
            result["record_state"] = row["state"]
            await enqueue(conn, self.api_outbox, out)
        return result

    async def revoke(self, credential_id: str, reason: str, caller: Caller) -> dict[str, Any]:
        out: list[OutgoingMessage] = []
        async with self.db.transaction() as conn:
            c = self.credentials
            credential = (
                await conn.execute(select(c.c.record_id).where(c.c.credential_id == credential_id))
            ).first()
            row = await self._record_for_update(conn, credential.record_id) if credential else None
            check_revocation(
                row["state"] if row else None,
                caller.organization_id or "",
                row["organization_id"] if row else None,
                caller.is_admin,
            )
            assert row is not None
            if row["credential_id"] != credential_id:
                # A credential an upheld appeal replaced was revoked already; its record's state
                # is the new credential's, and revoking the old one must not revoke the new.
                raise TransitionError(
                    409,
                    "the credential is not in force (it was revoked and replaced)",
                    "credential_id",
                    "must be a credential in force",
                )
            assert row is not None
            await conn.execute(
                c.update()
                .where(c.c.credential_id == credential_id)
                .values(revoked=True, revoked_reason=reason)
            )
            version = await self._transition(
                conn,
                row,
                "CredentialRevoked",
                caller.actor,
                {
                    "state": REVOKED,
                    "decision_version": row["version"] + 1,
                    "decided_by": caller.actor,
                },
                {"credential_id": credential_id, "reason": reason},
            )
            out.append(
                self._event(
                    "CredentialRevoked",
                    row,
                    caller.actor,
                    version,
                    credential_id=credential_id,
                    reason=reason,
                )
            )
            await enqueue(conn, self.api_outbox, out)
        return {"credential_id": credential_id, "state": REVOKED, "reason": reason}

    async def add_reviewer(self, name: str, token_sha256: str) -> str:
        reviewer_id = str(uuid.uuid4())
        async with self.db.transaction() as conn:
            await conn.execute(
                self.reviewers.insert().values(
                    reviewer_id=reviewer_id,
                    name=name,
                    token_sha256=token_sha256,
                    created_at=datetime.now(UTC),
                )
            )
        return reviewer_id

    # --- reads --------------------------------------------------------------------------------

    async def reviewer_by_token(self, token_sha256: str) -> str | None:
        async with self.db.read() as conn:
            found: str | None = await conn.scalar(
                select(self.reviewers.c.reviewer_id).where(
                    self.reviewers.c.token_sha256 == token_sha256
                )
            )
        return found

    async def person_by_token(self, token_sha256: str) -> str | None:
        async with self.db.read() as conn:
            found: str | None = await conn.scalar(
                select(self.persons.c.person_id).where(self.persons.c.token_sha256 == token_sha256)
            )
        return found

    async def organization_by_key(self, api_key_sha256: str) -> str | None:
        o = self.organizations
        async with self.db.read() as conn:
            found: str | None = await conn.scalar(
                select(o.c.organization_id).where(o.c.api_key_sha256 == api_key_sha256)
            )
        return found

    async def reviews(self, state: str, limit: int, offset: int) -> list[dict[str, Any]]:
        r = self.records
        async with self.db.read() as conn:
            rows = (
                (
                    await conn.execute(
                        select(r)
                        .where(r.c.state == state, r.c.queue == REVIEW)
                        .order_by(r.c.submitted_at, r.c.record_id)
                        .limit(limit)
                        .offset(offset)
                    )
                )
                .mappings()
                .all()
            )
        return [_review(row) for row in rows]

    async def appeals_list(self, state: str, limit: int, offset: int) -> list[dict[str, Any]]:
        a = self.appeals
        async with self.db.read() as conn:
            rows = (
                (
                    await conn.execute(
                        select(a)
                        .where(a.c.state == state)
                        .order_by(a.c.filed_at)
                        .limit(limit)
                        .offset(offset)
                    )
                )
                .mappings()
                .all()
            )
        return [{k: _plain(v) for k, v in row.items() if k != "contested_version"} for row in rows]

    async def credential(self, credential_id: str) -> dict[str, Any] | None:
        c = self.credentials
        async with self.db.read() as conn:
            row = (
                (await conn.execute(select(c).where(c.c.credential_id == credential_id)))
                .mappings()
                .first()
            )
        return dict(row) if row else None

    async def record(self, record_id: str) -> dict[str, Any] | None:
        async with self.db.read() as conn:
            row = (
                (
                    await conn.execute(
                        select(self.records).where(self.records.c.record_id == record_id)
                    )
                )
                .mappings()
                .first()
            )
        return dict(row) if row else None

    async def audit_trail(self, record_id: str) -> list[dict[str, Any]]:
        t = self.audit
        async with self.db.read() as conn:
            rows = (
                (await conn.execute(select(t).where(t.c.record_id == record_id).order_by(t.c.id)))
                .mappings()
                .all()
            )
        return [
            {"event_type": r.event_type, "actor": r.actor, "at": _plain(r.at), "detail": r.detail}
            for r in rows
        ]

    async def status_list(self, list_id: str) -> tuple[int, list[int], str] | None:
        """The list's size, its set indices and its purpose (``revocation`` or ``suspension``),
        or None if there is no such list."""
        s, c, p = self.status_lists, self.credentials, self.list_purposes
        async with self.db.read() as conn:
            size = await conn.scalar(select(s.c.size).where(s.c.list_id == list_id))
            if size is None:
                return None
            purpose = await conn.scalar(select(p.c.purpose).where(p.c.list_id == list_id))
            if purpose not in (None, REVOCATION):
                held = await suspended_indices(conn, self, list_id)
                return int(size), sorted(held), str(purpose)
            revoked = (
                (
                    await conn.execute(
                        select(c.c.status_index).where(
                            c.c.list_id == list_id, c.c.revoked.is_(True)
                        )
                    )
                )
                .scalars()
                .all()
            )
        return int(size), sorted(revoked), REVOCATION


def _json(document: dict[str, Any]) -> str:
    import orjson

    return orjson.dumps(document).decode()


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.replace(tzinfo=value.tzinfo or UTC).astimezone(UTC).isoformat()
    return value


def _review(row: Any) -> dict[str, Any]:
    return {
        "record_id": row.record_id,
        "person_id": row.person_id,
        "record_type": row.record_type,
        "submitter_kind": row.submitter_kind,
        "organization_id": row.organization_id,
        "state": row.state,
        "policy_rule": row.policy_rule,
        "submitted_at": _plain(row.submitted_at),
        "reason_code": row.reason_code,
        "note": row.note,
        "decided_by": row.decided_by,
        "decided_at": _plain(row.decided_at),
        "record": row.data,
    }
