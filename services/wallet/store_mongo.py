"""The wallet on MongoDB (motor), behind the same ports and contract tests as SQL: the
projection (persons, organizations, records with their verification and skills, demographics) and
the API's own records (shares with their audit entries, the API's outbox).

MongoDB has no transaction across documents without a replica set, so the guarantee is kept per
document: each update carries its own applied-event tracking (the highest offset of each input
partition it has applied, ``applied.<topic>|<partition>``) in the same single-document write as
the content, and is guarded by it. A batch then records the partition positions; a crash between
the two replays events whose document updates are refused by their guards. A record's skill
evidence is derived from the record document and recomputed after the guarded writes (idempotent;
a revision counter makes a recomputation from a stale read lose to a newer one). Timestamps are
kept as ISO-8601 strings (UTC), exactly as the SQL adapter returns them.

The API's writes are single-document too: a share document holds its audit entries and the
events not yet handed to the API outbox (``pending``), written in the same update as the share's
state. The events are then copied to the outbox collection (under their own sequence number, so
a second copy is refused) and pulled from the share; a crash between the two steps leaves them in
the share, and ``open()`` (or the relay, after ``STRAY_SECONDS``) moves them: an event can be
published twice, never lost, and never without its share or audit entry.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.errors import DuplicateKeyError

from ler.access import AccessChanged
from ler.outbox import OutgoingMessage
from ler.processing import TP, Batch, ProcessorStore, StalePositions
from ler.settings import PlatformSettings, load
from ler.skills import SkillEvidence, Taxonomy, load_taxonomy
from services.wallet import mongo_migrations
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
from services.wallet.mongo_outbox import (
    STRAY_SECONDS,
    MongoOutbox,
    is_duplicate_key,
    message_fields,
)
from services.wallet.store import ACCESS_ACTIONS, WalletApiStore

log = logging.getLogger(__name__)
#: Numbers the API's audit entries (apart from the outbox ids, which must have no gaps).
AUDIT_COUNTER = "api_audit"


def mongo_client(url: str) -> Any:
    """A motor client for ``mongodb://`` URLs; ``mongomock://`` gives an in-memory fake (tests)."""
    if url.startswith("mongomock://"):
        from mongomock_motor import AsyncMongoMockClient

        return AsyncMongoMockClient()
    from motor.motor_asyncio import AsyncIOMotorClient

    return AsyncIOMotorClient(url, tz_aware=True)


class _ApiOutbox(MongoOutbox):
    """The API's outbox: before each claim, moves events a crash left in share documents."""

    def __init__(self, store: MongoWalletStore) -> None:
        super().__init__(
            store.db["wallet_api_outbox"],
            store.db["wallet_counters"],
            "wallet_api_outbox",
            "api_outbox",
        )
        self.store = store

    @contextlib.asynccontextmanager
    async def claim(self, limit: int) -> AsyncIterator[Sequence[Any]]:
        await self.store.move_stray_events(STRAY_SECONDS)
        async with super().claim(limit) as rows:
            yield rows


class MongoWalletStore(ProcessorStore[WalletChange]):
    """The wallet on MongoDB: persons, organizations and records (with their verification
    transitions and skill evidence) as documents; shares with their audit entries."""

    def __init__(
        self, url: str, database: str = "ler_wallet", taxonomy: Taxonomy | None = None
    ) -> None:
        self.url = url
        self.taxonomy = taxonomy or load_taxonomy()
        self.client = mongo_client(url)
        self.db = self.client[database]
        self.persons = self.db["wallet_persons"]
        self.organizations = self.db["wallet_organizations"]
        self.records = self.db["wallet_records"]
        self.shares = self.db["wallet_shares"]
        self.positions_collection = self.db["wallet_positions"]
        self.outbox = MongoOutbox(self.db["wallet_outbox"], self.db["wallet_counters"])
        self.api_outbox = _ApiOutbox(self)

    async def open(self) -> None:
        # Indexes and document shapes change through numbered migrations (mongo_migrations.py):
        # applied here in the embedded mode, refused while pending in production.
        production = load(PlatformSettings).env == "production"
        await mongo_migrations.ensure(self.db, migrate=not production)
        await self.move_stray_events(0)

    async def close(self) -> None:
        self.client.close()

    def outbox_source(self) -> MongoOutbox:
        return self.outbox

    def api_outbox_source(self) -> MongoOutbox:
        """The wallet API's own outbox (share events), apart from the projector's."""
        return self.api_outbox

    async def positions(self) -> dict[TP, int]:
        return {
            (d["topic"], d["partition"]): d["offset"]
            async for d in self.positions_collection.find({})
        }

    async def position_marks(self) -> dict[TP, int]:
        return {
            (d["topic"], d["partition"]): d["mark"]
            async for d in self.positions_collection.find({"mark": {"$ne": None}})
        }

    async def commit(self, batch: Batch[WalletChange]) -> None:
        stored = await self.positions()
        for tp, first in batch.first_offsets.items():
            if stored.get(tp, -1) >= first:
                raise StalePositions(f"{tp[0]}[{tp[1]}] is at {stored[tp]}, batch from {first}")
        touched: set[str] = set()
        for change, (topic, partition, offset) in zip(batch.changes, batch.origins, strict=True):
            await self._apply(change, f"{topic}|{partition}", offset)
            if isinstance(change, RecordAdded | VerificationSeen):
                touched.add(change.record_id)
        # Before the positions: a crash here replays the batch, whose guards refuse the events
        # and whose recomputation then finishes the skills.
        for record_id in sorted(touched):
            await self._refresh_skills(record_id)
        await self.outbox.add(batch.outgoing)
        for (topic, partition), offset in batch.positions.items():
            # Only forward, and the mark moves with the offset: a position never goes back.
            position = {
                "topic": topic,
                "partition": partition,
                "offset": offset,
                "mark": batch.marks.get((topic, partition)),
            }
            for _attempt in range(3):
                moved = await self.positions_collection.update_one(
                    {"_id": f"{topic}|{partition}", "offset": {"$lt": offset}}, {"$set": position}
                )
                if moved.matched_count:
                    break
                try:
                    await self.positions_collection.insert_one(
                        {"_id": f"{topic}|{partition}", **position}
                    )
                    break
                except DuplicateKeyError:
                    continue  # it exists (at or past this offset, or just created): look again

    async def _apply(self, change: WalletChange, source: str, offset: int) -> None:
        if isinstance(change, PersonJoined):
            collection, key = self.persons, change.person_id
            fields: dict[str, Any] = {
                "display_name": change.display_name,
                "token_sha256": change.token_sha256,
                "enrolled_at": _iso(change.enrolled_at),
            }
            if change.demographics:
                fields["demographics"] = change.demographics
            update: dict[str, Any] = {"$setOnInsert": fields}
        elif isinstance(change, AccessChanged):
            # A reset access token (the wallet keeps no organization keys).
            collection, key = self.persons, change.subject_id
            update = {"$set": {"token_sha256": change.sha256}}
        elif isinstance(change, OrganizationKnown):
            collection, key = self.organizations, change.organization_id
            update = {"$setOnInsert": {"name": change.name, "kind": change.kind}}
        elif isinstance(change, RecordAdded):
            collection, key = self.records, change.record_id
            update = {
                "$set": {
                    "person_id": change.person_id,
                    "type": change.type,
                    "title": change.title,
                    "submitted_by": change.submitted_by,
                    "submitter_kind": change.submitter_kind,
                    "submitted_at": _iso(change.submitted_at),
                    "details": change.details,
                    "projected_at": datetime.now(UTC).isoformat(),
                },
                "$inc": {"rev": 1},
            }
        else:
            collection, key = self.records, change.record_id
            update = {
                "$set": {
                    f"verifications.{change.version}": {
                        "person_id": change.person_id,
                        "event_type": change.event_type,
                        "occurred_at": _iso(change.occurred_at),
                        "data": _plain_data(change.data),
                    }
                },
                "$inc": {"rev": 1},
            }
        update.setdefault("$set", {})[f"applied.{source}"] = offset
        await self._guarded(collection, key, f"applied.{source}", offset, update, change)

    async def _guarded(
        self, collection: Any, key: str, applied: str, offset: int, update: Any, change: Any
    ) -> None:
        """The update of one event, unless its document holds that offset already. A duplicate
        key is the guard refusing the event, or another worker creating the document first (a
        rebalance overlap): tried again once the document exists, and taken for "applied" only
        if the document says so."""
        guard = {"_id": key, "$or": [{applied: {"$lt": offset}}, {applied: {"$exists": False}}]}
        for _attempt in range(5):
            try:
                await collection.update_one(guard, update, upsert=True)
                return
            except Exception as exc:
                if not is_duplicate_key(exc):
                    raise
                refused = exc
            # (FerretDB does not say which index refused it: the document tells.)
            doc = await collection.find_one({"_id": key}, {applied: 1})
            if doc is None:  # not ``_id``: another unique index (a person's token)
                if isinstance(change, PersonJoined):
                    # A token another person holds: as SQL's insert that ignores the conflict,
                    # the second person gets no wallet (the token keeps opening the first's).
                    log.warning("wallet: person %s enrolled with a token held by another", key)
                    return
                raise refused
            held = _dig(doc, applied)
            if held is not None and held >= offset:
                return  # the document has this event
        raise RuntimeError(f"{collection.name} {key}: update refused five times, not applied")

    async def _refresh_skills(self, record_id: str) -> None:
        """Recompute a record's skill evidence from its details and folded status, as the SQL
        adapter does; written only if the record did not change since it was read."""
        while True:
            doc = await self.records.find_one({"_id": record_id})
            if doc is None:
                return
            skills: list[dict[str, Any]] = []
            if "type" in doc:
                record = {
                    "record_id": doc["_id"],
                    "type": doc["type"],
                    "title": doc["title"],
                    "status": "submitted",
                    **doc["details"],
                    **record_status(_transitions(doc)),
                }
                skills = [
                    {**evidence, "person_id": doc["person_id"], "ordinal": ordinal}
                    for ordinal, evidence in enumerate(evidence_rows(record, self.taxonomy))
                ]
            result = await self.records.update_one(
                {"_id": record_id, "rev": doc.get("rev")}, {"$set": {"skills": skills}}
            )
            if result.matched_count:
                return

    async def owner_of_token(self, token_sha256: str) -> str | None:
        found = await self.persons.find_one({"token_sha256": token_sha256}, {"_id": 1})
        return str(found["_id"]) if found else None

    async def wallet(self, person_id: str) -> dict[str, Any] | None:
        person = await self.persons.find_one({"_id": person_id})
        if person is None or "display_name" not in person:
            return None
        docs = await self._records_of(person_id)
        org_ids = {d["submitted_by"] for d in docs if d["submitter_kind"] == "organization"}
        names = {
            o["_id"]: o["name"]
            async for o in self.organizations.find({"_id": {"$in": list(org_ids)}})
        }
        return {
            "person_id": person_id,
            "display_name": person["display_name"],
            "enrolled_at": person["enrolled_at"],
            "records": [{**_record(d, names), **record_status(_transitions(d))} for d in docs],
        }

    async def _records_of(
        self, person_id: str, record_ids: Iterable[str] | None = None
    ) -> list[dict[str, Any]]:
        query: dict[str, Any] = {"person_id": person_id, "type": {"$exists": True}}
        if record_ids is not None:
            query["_id"] = {"$in": list(record_ids)}
        docs = [d async for d in self.records.find(query)]
        docs.sort(key=lambda d: (d["submitted_at"], d["_id"]))
        return docs

    async def skill_evidence(
        self, person_id: str, record_ids: Iterable[str] | None = None
    ) -> list[SkillEvidence]:
        """The person's skill evidence, in record then rule order; only that of ``record_ids``
        when given (a share's audience sees the shared records' skills only)."""
        docs = await self._records_of(person_id, record_ids)
        rows = [row for d in docs for row in d.get("skills") or []]
        return evidence_from_rows(rows, {d["_id"]: d["type"] for d in docs})

    async def demographics_of(self, person_id: str) -> dict[str, Any]:
        """The person's demographic fields from enrollment ({} when none were given)."""
        person = await self.persons.find_one({"_id": person_id}, {"demographics": 1})
        return dict((person or {}).get("demographics") or {})

    async def create_share(self, share: Share, outgoing: Sequence[OutgoingMessage]) -> None:
        """Store a new share with its audit entry and its events in one document write, then
        hand the events to the API outbox."""
        entry, pending = await self._entry_and_pending(
            share, "person", "share_created", share.created_at, {}, outgoing
        )
        await self._or_void(
            pending,
            self.shares.insert_one(
                {
                    "_id": share.share_id,
                    "person_id": share.person_id,
                    "token_sha256": share.token_sha256,
                    "audience": share.audience,
                    "record_ids": list(share.record_ids),
                    "include_demographics": share.include_demographics,
                    "created_at": _iso(share.created_at),
                    "expires_at": _iso(share.expires_at),
                    "revoked_at": None,
                    "audit": [entry],
                    "pending": pending,
                }
            ),
        )
        await self._hand_over(share.share_id, pending)

    async def share(self, person_id: str, share_id: str) -> Share | None:
        """One of the person's shares (None for anyone else's)."""
        doc = await self.shares.find_one({"_id": share_id, "person_id": person_id}, _SHARE_FIELDS)
        return _share(doc) if doc else None

    async def share_by_token(self, token_sha256: str) -> Share | None:
        doc = await self.shares.find_one({"token_sha256": token_sha256}, _SHARE_FIELDS)
        return _share(doc) if doc else None

    async def revoke_share(
        self, share: Share, at: datetime, outgoing: Sequence[OutgoingMessage]
    ) -> bool:
        """Revoke an active share (audit entry and events in the same document write); False,
        and nothing written, when it was already revoked."""
        entry, pending = await self._entry_and_pending(
            share, "person", "share_revoked", at, {}, outgoing
        )
        result = await self._or_void(
            pending,
            self.shares.update_one(
                {"_id": share.share_id, "revoked_at": None},
                {
                    "$set": {"revoked_at": _iso(at)},
                    "$push": {"audit": entry, "pending": {"$each": pending}},
                },
            ),
        )
        if not result.modified_count:
            await self.api_outbox.void(p["_id"] for p in pending)
            return False
        await self._hand_over(share.share_id, pending)
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
        entry, pending = await self._entry_and_pending(
            share, f"share:{share.share_id}", action, at, detail or {}, outgoing
        )
        result = await self._or_void(
            pending,
            self.shares.update_one(
                {"_id": share.share_id},
                {"$push": {"audit": entry, "pending": {"$each": pending}}},
            ),
        )
        if not result.matched_count:
            await self.api_outbox.void(p["_id"] for p in pending)
            return
        await self._hand_over(share.share_id, pending)

    async def shares_of(self, person_id: str) -> list[dict[str, Any]]:
        """The person's shares, newest first, each with its accesses (when, which audience)."""
        docs = [d async for d in self.shares.find({"person_id": person_id}, {"pending": 0})]
        docs.sort(key=lambda d: d["_id"])
        docs.sort(key=lambda d: d["created_at"], reverse=True)
        now = datetime.now(UTC)
        out = []
        for doc in docs:
            share = _share(doc)
            accesses = sorted(
                (e for e in doc.get("audit") or [] if e["action"] in ACCESS_ACTIONS),
                key=lambda e: (e["at"], e["seq"]),
            )
            out.append(
                {
                    "share_id": share.share_id,
                    "audience": share.audience,
                    "record_ids": list(share.record_ids),
                    "include_demographics": share.include_demographics,
                    "created_at": doc["created_at"],
                    "expires_at": doc["expires_at"],
                    "revoked_at": doc["revoked_at"],
                    "state": str(share.state(now)),
                    "accesses": [
                        {"at": e["at"], "action": e["action"], **e["detail"]} for e in accesses
                    ],
                }
            )
        return out

    async def audit_of(self, person_id: str, limit: int = 500) -> list[dict[str, Any]]:
        """The audit log of the person's wallet, newest first: who did what, when."""
        entries = [
            (doc["_id"], e)
            async for doc in self.shares.find({"person_id": person_id}, {"audit": 1})
            for e in doc.get("audit") or []
        ]
        entries.sort(key=lambda pair: (pair[1]["at"], pair[1]["seq"]), reverse=True)
        return [
            {
                "at": e["at"],
                "actor": e["actor"],
                "action": e["action"],
                "share_id": share_id,
                **e["detail"],
            }
            for share_id, e in entries[:limit]
        ]

    async def _entry_and_pending(
        self,
        share: Share,
        actor: str,
        action: str,
        at: datetime,
        detail: dict[str, Any],
        outgoing: Sequence[OutgoingMessage],
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """An audit entry (numbered by the audit counter) and the share's events (by the API
        outbox's: each id reserved is then written or voided, or the relay waits for it)."""
        counter = await self.db["wallet_counters"].find_one_and_update(
            {"_id": AUDIT_COUNTER}, {"$inc": {"next": 1}}, upsert=True, return_document=True
        )
        first = await self.api_outbox.next_ids(len(outgoing)) if outgoing else 0
        entry = {
            "seq": int(counter["next"]) - 1,
            "actor": actor,
            "action": action,
            "at": _iso(at),
            "detail": {"audience": share.audience, **detail},
        }
        queued_at = datetime.now(UTC).isoformat()
        pending = [
            {"_id": first + i, "queued_at": queued_at, **message_fields(m)}
            for i, m in enumerate(outgoing)
        ]
        return entry, pending

    async def _or_void(self, pending: list[dict[str, Any]], write: Awaitable[Any]) -> Any:
        """The share's write; if it fails, its events' reserved ids are given up."""
        try:
            return await write
        except Exception:
            with contextlib.suppress(Exception):  # else the relay waits GAP_SECONDS for them
                await self.api_outbox.void(p["_id"] for p in pending)
            raise

    async def _hand_over(self, share_id: str, pending: list[dict[str, Any]]) -> None:
        """Copy a share's events to the API outbox, then drop them from the share."""
        if not pending:
            return
        await self.api_outbox.add_once(
            {k: v for k, v in p.items() if k != "queued_at"} for p in pending
        )
        # $pullAll of the documents as written (FerretDB 1.24 ignores $pull with a condition).
        await self.shares.update_one({"_id": share_id}, {"$pullAll": {"pending": pending}})

    async def move_stray_events(self, older_than_seconds: float) -> None:
        """Hand over events left in share documents (a crash after the share's write)."""
        cutoff = (datetime.now(UTC) - timedelta(seconds=older_than_seconds)).isoformat()
        # Dot notation, not $elemMatch (FerretDB 1.24 matches nothing with $elemMatch here).
        query = {"pending.queued_at": {"$lte": cutoff}}
        async for doc in self.shares.find(query, {"pending": 1}):
            stray = [p for p in doc["pending"] if p["queued_at"] <= cutoff]
            await self._hand_over(doc["_id"], sorted(stray, key=lambda p: p["_id"]))

    async def dump(self) -> dict[str, list[dict[str, Any]]]:
        """The projection in the SQL adapter's row shape, so adapters compare row by row."""
        persons, demographics = [], []
        async for d in self.persons.find({"display_name": {"$exists": True}}):
            persons.append(
                {
                    "person_id": d["_id"],
                    "display_name": d["display_name"],
                    "token_sha256": d["token_sha256"],
                    "enrolled_at": d["enrolled_at"],
                }
            )
            if d.get("demographics"):
                demographics.append({"person_id": d["_id"], "data": d["demographics"]})
        organizations = [
            {"organization_id": d["_id"], "name": d["name"], "kind": d["kind"]}
            async for d in self.organizations.find({})
        ]
        records: list[dict[str, Any]] = []
        verifications: list[dict[str, Any]] = []
        skills: list[dict[str, Any]] = []
        async for d in self.records.find({}):
            if "type" in d:
                records.append(
                    {
                        "record_id": d["_id"],
                        "person_id": d["person_id"],
                        "type": d["type"],
                        "title": d["title"],
                        "status": "submitted",
                        "submitted_by": d["submitted_by"],
                        "submitter_kind": d["submitter_kind"],
                        "submitted_at": d["submitted_at"],
                        "details": d["details"],
                    }
                )
            for version, v in (d.get("verifications") or {}).items():
                verifications.append({"record_id": d["_id"], "version": int(version), **v})
            skills.extend(d.get("skills") or [])
        return {
            "wallet_persons": sorted(persons, key=lambda r: r["person_id"]),
            "wallet_organizations": sorted(organizations, key=lambda r: r["organization_id"]),
            "wallet_records": sorted(records, key=lambda r: r["record_id"]),
            "wallet_verifications": sorted(
                verifications, key=lambda r: (r["record_id"], r["version"])
            ),
            "wallet_demographics": sorted(demographics, key=lambda r: r["person_id"]),
            "wallet_skills": sorted(skills, key=lambda r: (r["record_id"], r["skill_id"])),
        }


_SHARE_FIELDS = {"audit": 0, "pending": 0}


def _dig(doc: dict[str, Any] | None, path: str) -> Any:
    """The value at a dotted path of a document (None where any part is missing)."""
    value: Any = doc
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _iso(value: datetime) -> str:
    return value.replace(tzinfo=value.tzinfo or UTC).astimezone(UTC).isoformat()


def _plain_data(data: dict[str, Any]) -> dict[str, Any]:
    return {k: _iso(v) if isinstance(v, datetime) else v for k, v in data.items()}


def _transitions(doc: dict[str, Any]) -> list[tuple[int, str, str, dict[str, Any]]]:
    return [
        (int(version), v["event_type"], v["occurred_at"], v["data"])
        for version, v in (doc.get("verifications") or {}).items()
    ]


def _record(doc: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    submitted_by: dict[str, Any] = {"kind": doc["submitter_kind"], "id": doc["submitted_by"]}
    if doc["submitter_kind"] == "organization":
        submitted_by["name"] = names.get(doc["submitted_by"])
    return {
        "record_id": doc["_id"],
        "type": doc["type"],
        "title": doc["title"],
        "status": "submitted",
        "submitted_by": submitted_by,
        "submitted_at": doc["submitted_at"],
        **doc["details"],
    }


def _share(doc: dict[str, Any]) -> Share:
    revoked_at = doc.get("revoked_at")
    return Share(
        share_id=doc["_id"],
        person_id=doc["person_id"],
        token_sha256=doc["token_sha256"],
        audience=doc["audience"],
        record_ids=tuple(doc["record_ids"]),
        include_demographics=bool(doc["include_demographics"]),
        created_at=datetime.fromisoformat(doc["created_at"]),
        expires_at=datetime.fromisoformat(doc["expires_at"]),
        revoked_at=datetime.fromisoformat(revoked_at) if revoked_at else None,
    )


def _mongo_store_is_an_api_store(store: MongoWalletStore) -> WalletApiStore:
    # mypy checks here that the MongoDB adapter implements the API's port.
    return store
