"""The wallet in SQL: the projection (persons, organizations, records, their verification and
the skills they show) and the API's own records (shares, the audit log, the API's outbox)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, Protocol

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
    delete,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from ler.access_sql import apply_access_changes
from ler.outbox import OutboxSource, OutgoingMessage, SqlOutbox, enqueue, outbox_table
from ler.skills import SkillEvidence, Taxonomy, load_taxonomy
from ler.sql import Database
from ler.sqlstore import SqlProcessorStore
from services.wallet.domain import (
    OrganizationKnown,
    PersonJoined,
    RecordAdded,
    Share,
    VerificationSeen,
    WalletChange,
    evidence_from_rows,
    evidence_rows,
    record_status,
)
from services.wallet.migrations import HISTORY

#: Audit actions that are reads of a wallet by someone else (a share's audience).
ACCESS_ACTIONS = ("share_opened", "share_qr_opened", "share_matched")
_CHUNK = 500

PREFIX = "wallet"


class WalletApiStore(Protocol):
    """Port: what the wallet API needs of a wallet store besides the projection's own methods
    (every adapter implements it: SQL here, MongoDB in ``store_mongo.py``)."""

    taxonomy: Taxonomy

    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def positions(self) -> Any: ...
    def api_outbox_source(self) -> OutboxSource: ...
    async def owner_of_token(self, token_sha256: str) -> str | None: ...
    async def wallet(self, person_id: str) -> dict[str, Any] | None: ...
    async def skill_evidence(
        self, person_id: str, record_ids: Iterable[str] | None = None
    ) -> list[SkillEvidence]: ...
    async def demographics_of(self, person_id: str) -> dict[str, Any]: ...
    async def create_share(self, share: Share, outgoing: Sequence[OutgoingMessage]) -> None: ...
    async def share(self, person_id: str, share_id: str) -> Share | None: ...
    async def share_by_token(self, token_sha256: str) -> Share | None: ...
    async def revoke_share(
        self, share: Share, at: datetime, outgoing: Sequence[OutgoingMessage]
    ) -> bool: ...
    async def record_access(
        self,
        share: Share,
        action: str,
        at: datetime,
        outgoing: Sequence[OutgoingMessage],
        detail: dict[str, Any] | None = None,
    ) -> None: ...
    async def shares_of(self, person_id: str) -> list[dict[str, Any]]: ...
    async def audit_of(self, person_id: str, limit: int = 500) -> list[dict[str, Any]]: ...


class SqlWalletStore(SqlProcessorStore[WalletChange]):
    """Wallet projection on SQLite or PostgreSQL."""

    def __init__(self, url: str, taxonomy: Taxonomy | None = None) -> None:
        metadata = MetaData()
        self.taxonomy = taxonomy or load_taxonomy()
        super().__init__(Database(url, metadata, migrations=HISTORY), PREFIX)
        self.persons = Table(
            "wallet_persons",
            metadata,
            Column("person_id", String(36), primary_key=True),
            Column("display_name", String(400), nullable=False),
            Column("token_sha256", String(64), nullable=False, unique=True),
            Column("enrolled_at", DateTime(timezone=True), nullable=False),
        )
        self.organizations = Table(
            "wallet_organizations",
            metadata,
            Column("organization_id", String(36), primary_key=True),
            Column("name", String(300), nullable=False),
            Column("kind", String(40), nullable=False),
        )
        self.records = Table(
            "wallet_records",
            metadata,
            Column("record_id", String(36), primary_key=True),
            Column("person_id", String(36), nullable=False),
            Column("type", String(20), nullable=False),
            Column("title", String(300), nullable=False),
            Column("status", String(20), nullable=False),
            Column("submitted_by", String(36), nullable=False),
            Column("submitter_kind", String(20), nullable=False),
            Column("submitted_at", DateTime(timezone=True), nullable=False),
            Column("projected_at", DateTime(timezone=True), nullable=False),
            Column("details", JSON, nullable=False),
            Index("wallet_records_person", "person_id", "submitted_at"),
        )

        self.verifications = Table(
            "wallet_verifications",
            metadata,
            Column("record_id", String(36), primary_key=True),
            Column("version", Integer, primary_key=True, autoincrement=False),
            Column("person_id", String(36), nullable=False),
            Column("event_type", String(40), nullable=False),
            Column("occurred_at", DateTime(timezone=True), nullable=False),
            Column("data", JSON, nullable=False),
            Index("wallet_verifications_person", "person_id"),
        )
        self.demographics = Table(
            "wallet_demographics",
            metadata,
            Column("person_id", String(36), primary_key=True),
            Column("data", JSON, nullable=False),
        )
        # Derived from records and their verification (rebuilt whenever either changes).
        self.skills = Table(
            "wallet_skills",
            metadata,
            Column("record_id", String(36), primary_key=True),
            Column("skill_id", String(80), primary_key=True),
            Column("person_id", String(36), nullable=False),
            Column("verified", Boolean, nullable=False),
            Column("source", String(20), nullable=False),
            Column("matched_on", String(300), nullable=False),
            Column("credential_id", String(100), nullable=True),
            Column("ordinal", Integer, nullable=False),
            Index("wallet_skills_person", "person_id"),
        )
        # The API's own records: not derived from the log (see docs/wallet.md).
        self.shares = Table(
            "wallet_shares",
            metadata,
            Column("share_id", String(36), primary_key=True),
            Column("person_id", String(36), nullable=False),
            Column("token_sha256", String(64), nullable=False, unique=True),
            Column("audience", String(200), nullable=False),
            Column("record_ids", JSON, nullable=False),
            Column("include_demographics", Boolean, nullable=False),
            Column("created_at", DateTime(timezone=True), nullable=False),
            Column("expires_at", DateTime(timezone=True), nullable=False),
            Column("revoked_at", DateTime(timezone=True), nullable=True),
            Index("wallet_shares_person", "person_id", "created_at"),
        )
        self.audit_log = Table(
            "wallet_audit",
            metadata,
            Column(
                "id",
                BigInteger().with_variant(Integer, "sqlite"),
                primary_key=True,
                autoincrement=True,
            ),
            Column("person_id", String(36), nullable=False),
            Column("share_id", String(36), nullable=True),
            Column("actor", String(80), nullable=False),
            Column("action", String(40), nullable=False),
            Column("at", DateTime(timezone=True), nullable=False),
            Column("detail", JSON, nullable=False),
            Index("wallet_audit_person", "person_id", "at"),
        )
        self.api_outbox = outbox_table(metadata, "wallet_api")

    async def apply(self, conn: AsyncConnection, changes: list[WalletChange]) -> None:
        now = datetime.now(UTC)
        persons = [c for c in changes if isinstance(c, PersonJoined)]
        organizations = [c for c in changes if isinstance(c, OrganizationKnown)]
        records = [c for c in changes if isinstance(c, RecordAdded)]
        verifications = [c for c in changes if isinstance(c, VerificationSeen)]
        if verifications:
            # Keyed by (record, version): a redelivered transition changes nothing, and the
            # status is folded in version order when read, so arrival order does not matter.
            await conn.execute(
                self.db.insert_ignore(self.verifications),
                [
                    {
                        "record_id": v.record_id,
                        "version": v.version,
                        "person_id": v.person_id,
                        "event_type": v.event_type,
                        "occurred_at": v.occurred_at,
                        "data": v.data,
                    }
                    for v in verifications
                ],
            )
        if persons:
            await conn.execute(
                self.db.insert_ignore(self.persons),
                [
                    {
                        "person_id": p.person_id,
                        "display_name": p.display_name,
                        "token_sha256": p.token_sha256,
                        "enrolled_at": p.enrolled_at,
                    }
                    for p in persons
                ],
            )
            with_demographics = [p for p in persons if p.demographics]
            if with_demographics:
                await conn.execute(
                    self.db.insert_ignore(self.demographics),
                    [{"person_id": p.person_id, "data": p.demographics} for p in with_demographics],
                )
        if organizations:
            await conn.execute(
                self.db.insert_ignore(self.organizations),
                [
                    {"organization_id": o.organization_id, "name": o.name, "kind": o.kind}
                    for o in organizations
                ],
            )
        # A reset access token: the API stops accepting the old one.
        await apply_access_changes(conn, changes, persons=(self.persons, "token_sha256"))
        fresh: set[str] = set()
        if records:
            # RETURNING names the records this batch really added (not redeliveries).
            added = await conn.execute(
                self.db.insert_ignore(self.records).returning(self.records.c.record_id),
                [
                    {
                        "record_id": r.record_id,
                        "person_id": r.person_id,
                        "type": r.type,
                        "title": r.title,
                        "status": "submitted",
                        "submitted_by": r.submitted_by,
                        "submitter_kind": r.submitter_kind,
                        "submitted_at": r.submitted_at,
                        "projected_at": now,
                        "details": r.details,
                    }
                    for r in records
                ],
            )
            fresh = set(added.scalars())
        touched = {r.record_id for r in records} | {v.record_id for v in verifications}
        if touched:
            # Records added by this batch are known here; only the others are read back.
            known = {
                r.record_id: SimpleNamespace(
                    record_id=r.record_id,
                    person_id=r.person_id,
                    type=r.type,
                    title=r.title,
                    status="submitted",
                    details=r.details,
                )
                for r in records
            }
            await self._refresh_skills(conn, sorted(touched), known, fresh)

    async def _refresh_skills(
        self,
        conn: AsyncConnection,
        record_ids: list[str],
        known: dict[str, Any] | None = None,
        fresh: set[str] | None = None,
    ) -> None:
        """Recompute the skill evidence of these records from their details and folded status.

        ``fresh`` records were inserted by this transaction, so they have no evidence rows to
        delete yet (skipping that delete matters: on PostgreSQL, a table that grew from empty
        faster than autovacuum analyzes it gets a sequential scan per delete, measured at a
        second per batch)."""
        r, v, k = self.records, self.verifications, self.skills
        known = known or {}
        for start in range(0, len(record_ids), _CHUNK):
            chunk = record_ids[start : start + _CHUNK]
            unknown = [i for i in chunk if i not in known]
            rows = [known[i] for i in chunk if i in known]
            if unknown:
                rows += (await conn.execute(select(r).where(r.c.record_id.in_(unknown)))).all()
            transitions: dict[str, list[tuple[int, str, str, dict[str, Any]]]] = {}
            for t in await conn.execute(
                select(v.c.record_id, v.c.version, v.c.event_type, v.c.occurred_at, v.c.data).where(
                    v.c.record_id.in_(chunk)
                )
            ):
                transitions.setdefault(t.record_id, []).append(
                    (t.version, t.event_type, _plain(t.occurred_at), t.data)
                )
            new_rows = []
            for row in rows:
                record = {
                    **_record_fields(row),
                    **record_status(transitions.get(row.record_id, [])),
                }
                for ordinal, evidence in enumerate(evidence_rows(record, self.taxonomy)):
                    new_rows.append({**evidence, "person_id": row.person_id, "ordinal": ordinal})
            stale = [i for i in chunk if i not in (fresh or ())]
            if stale:
                await conn.execute(delete(k).where(k.c.record_id.in_(stale)))
            if new_rows:
                await conn.execute(k.insert(), new_rows)

    async def owner_of_token(self, token_sha256: str) -> str | None:
        async with self.db.read() as conn:
            person_id: str | None = await conn.scalar(
                select(self.persons.c.person_id).where(self.persons.c.token_sha256 == token_sha256)
            )
        return person_id

    async def wallet(self, person_id: str) -> dict[str, Any] | None:
        """The person's wallet document, or None if the wallet has not seen them."""
        p, r, o = self.persons, self.records, self.organizations
        async with self.db.read() as conn:
            person = (await conn.execute(select(p).where(p.c.person_id == person_id))).first()
            if person is None:
                return None
            rows = (
                await conn.execute(
                    select(r, o.c.name.label("organization_name"))
                    .outerjoin(o, o.c.organization_id == r.c.submitted_by)
                    .where(r.c.person_id == person_id)
                    .order_by(r.c.submitted_at, r.c.record_id)
                )
            ).all()
            v = self.verifications
            transitions: dict[str, list[tuple[int, str, str, dict[str, Any]]]] = {}
            for t in await conn.execute(
                select(v.c.record_id, v.c.version, v.c.event_type, v.c.occurred_at, v.c.data).where(
                    v.c.person_id == person_id
                )
            ):
                transitions.setdefault(t.record_id, []).append(
                    (t.version, t.event_type, _plain(t.occurred_at), t.data)
                )
        return {
            "person_id": person.person_id,
            "display_name": person.display_name,
            "enrolled_at": _plain(person.enrolled_at),
            "records": [
                {**_record(row), **record_status(transitions.get(row.record_id, []))}
                for row in rows
            ],
        }

    def api_outbox_source(self) -> SqlOutbox:
        """The wallet API's own outbox (share events), apart from the projector's."""
        return SqlOutbox(self.db, self.api_outbox)

    async def skill_evidence(
        self, person_id: str, record_ids: Iterable[str] | None = None
    ) -> list[SkillEvidence]:
        """The person's skill evidence, in record then rule order; only that of ``record_ids``
        when given (a share's audience sees the shared records' skills only)."""
        k, r = self.skills, self.records
        query = (
            select(k, r.c.type.label("record_type"))
            .join(r, r.c.record_id == k.c.record_id)
            .where(k.c.person_id == person_id)
            .order_by(r.c.submitted_at, k.c.record_id, k.c.ordinal)
        )
        if record_ids is not None:
            query = query.where(k.c.record_id.in_(list(record_ids)))
        async with self.db.read() as conn:
            rows = [dict(row) for row in (await conn.execute(query)).mappings()]
        return evidence_from_rows(rows, {row["record_id"]: row["record_type"] for row in rows})

    async def demographics_of(self, person_id: str) -> dict[str, Any]:
        """The person's demographic fields from enrollment ({} when none were given)."""
        async with self.db.read() as conn:
            data = await conn.scalar(
                select(self.demographics.c.data).where(self.demographics.c.person_id == person_id)
            )
        return dict(data or {})

    async def create_share(self, share: Share, outgoing: Sequence[OutgoingMessage]) -> None:
        """Store a new share, its audit entry and its events (API outbox), in one transaction."""
        async with self.db.transaction() as conn:
            await conn.execute(
                self.shares.insert().values(
                    share_id=share.share_id,
                    person_id=share.person_id,
                    token_sha256=share.token_sha256,
                    audience=share.audience,
                    record_ids=list(share.record_ids),
                    include_demographics=share.include_demographics,
                    created_at=share.created_at,
                    expires_at=share.expires_at,
                    revoked_at=None,
                )
            )
            await self._audit(conn, share, "person", "share_created", share.created_at, {})
            await enqueue(conn, self.api_outbox, list(outgoing))

    async def share(self, person_id: str, share_id: str) -> Share | None:
        """One of the person's shares (None for anyone else's)."""
        t = self.shares
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    select(t).where(t.c.share_id == share_id, t.c.person_id == person_id)
                )
            ).first()
        return _share(row) if row else None

    async def share_by_token(self, token_sha256: str) -> Share | None:
        t = self.shares
        async with self.db.read() as conn:
            row = (await conn.execute(select(t).where(t.c.token_sha256 == token_sha256))).first()
        return _share(row) if row else None

    async def revoke_share(
        self, share: Share, at: datetime, outgoing: Sequence[OutgoingMessage]
    ) -> bool:
        """Revoke an active share (audit entry and events in the same transaction); False, and
        nothing written, when it was already revoked."""
        t = self.shares
        async with self.db.transaction() as conn:
            result = await conn.execute(
                update(t)
                .where(t.c.share_id == share.share_id, t.c.revoked_at.is_(None))
                .values(revoked_at=at)
            )
            if result.rowcount == 0:
                return False
            await self._audit(conn, share, "person", "share_revoked", at, {})
            await enqueue(conn, self.api_outbox, list(outgoing))
        return True

    async def record_access(
        self,
        share: Share,
        action: str,
        at: datetime,
        outgoing: Sequence[OutgoingMessage],
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Audit a read of the person's wallet through a share (and publish it), atomically."""
        async with self.db.transaction() as conn:
            await self._audit(conn, share, f"share:{share.share_id}", action, at, detail or {})
            await enqueue(conn, self.api_outbox, list(outgoing))

    async def shares_of(self, person_id: str) -> list[dict[str, Any]]:
        """The person's shares, newest first, each with its accesses (when, which audience)."""
        t, a = self.shares, self.audit_log
        async with self.db.read() as conn:
            rows = (
                await conn.execute(
                    select(t)
                    .where(t.c.person_id == person_id)
                    .order_by(t.c.created_at.desc(), t.c.share_id)
                )
            ).all()
            accesses: dict[str, list[dict[str, Any]]] = {}
            for entry in await conn.execute(
                select(a.c.share_id, a.c.action, a.c.at, a.c.detail)
                .where(a.c.person_id == person_id, a.c.action.in_(ACCESS_ACTIONS))
                .order_by(a.c.at, a.c.id)
            ):
                accesses.setdefault(entry.share_id, []).append(
                    {"at": _plain(entry.at), "action": entry.action, **entry.detail}
                )
        now = datetime.now(UTC)
        out = []
        for row in rows:
            share = _share(row)
            out.append(
                {
                    "share_id": share.share_id,
                    "audience": share.audience,
                    "record_ids": list(share.record_ids),
                    "include_demographics": share.include_demographics,
                    "created_at": _plain(share.created_at),
                    "expires_at": _plain(share.expires_at),
                    "revoked_at": _plain(share.revoked_at),
                    "state": str(share.state(now)),
                    "accesses": accesses.get(share.share_id, []),
                }
            )
        return out

    async def audit_of(self, person_id: str, limit: int = 500) -> list[dict[str, Any]]:
        """The audit log of the person's wallet, newest first: who did what, when."""
        a = self.audit_log
        async with self.db.read() as conn:
            rows = (
                await conn.execute(
                    select(a)
                    .where(a.c.person_id == person_id)
                    .order_by(a.c.at.desc(), a.c.id.desc())
                    .limit(limit)
                )
            ).all()
        return [
            {
                "at": _plain(row.at),
                "actor": row.actor,
                "action": row.action,
                "share_id": row.share_id,
                **row.detail,
            }
            for row in rows
        ]

    async def _audit(
        self,
        conn: AsyncConnection,
        share: Share,
        actor: str,
        action: str,
        at: datetime,
        detail: dict[str, Any],
    ) -> None:
        await conn.execute(
            self.audit_log.insert().values(
                person_id=share.person_id,
                share_id=share.share_id,
                actor=actor,
                action=action,
                at=at,
                detail={"audience": share.audience, **detail},
            )
        )

    async def dump(self) -> dict[str, list[dict[str, Any]]]:
        """Every row of the projection (positions and timings aside), for comparisons."""
        out: dict[str, list[dict[str, Any]]] = {}
        async with self.db.read() as conn:
            for table in (
                self.persons,
                self.organizations,
                self.records,
                self.verifications,
                self.demographics,
                self.skills,
            ):
                order = list(table.primary_key.columns)
                rows = (await conn.execute(select(table).order_by(*order))).mappings().all()
                out[table.name] = [
                    {k: _plain(v) for k, v in row.items() if k != "projected_at"} for row in rows
                ]
        return out


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.replace(tzinfo=value.tzinfo or UTC).astimezone(UTC).isoformat()
    return value


def _record_fields(row: Any) -> dict[str, Any]:
    return {
        "record_id": row.record_id,
        "type": row.type,
        "title": row.title,
        "status": row.status,
        **row.details,
    }


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=value.tzinfo or UTC).astimezone(UTC)


def _share(row: Any) -> Share:
    return Share(
        share_id=row.share_id,
        person_id=row.person_id,
        token_sha256=row.token_sha256,
        audience=row.audience,
        record_ids=tuple(row.record_ids),
        include_demographics=bool(row.include_demographics),
        created_at=_utc(row.created_at) or row.created_at,
        expires_at=_utc(row.expires_at) or row.expires_at,
        revoked_at=_utc(row.revoked_at),
    )


def _record(row: Any) -> dict[str, Any]:
    submitted_by: dict[str, Any] = {"kind": row.submitter_kind, "id": row.submitted_by}
    if row.submitter_kind == "organization":
        submitted_by["name"] = row.organization_name
    return {
        "record_id": row.record_id,
        "type": row.type,
        "title": row.title,
        "status": row.status,
        "submitted_by": submitted_by,
        "submitted_at": _plain(row.submitted_at),
        **row.details,
    }


def _sql_store_is_an_api_store(store: SqlWalletStore) -> WalletApiStore:
    # mypy checks here that the SQL adapter implements the API's port.
    return store
