"""``ler replay verification``: rebuild the verification store from the log into an empty store.

Two passes (docs/operations.md, "Disaster recovery"):

1. The inputs (``ler.enrollment.v1``, ``ler.records.v1``) through the processor, its store in
   ``replaying`` mode: persons, organizations and their keys, and every record as submitted
   (awaiting its issuer, version 0). Nothing is routed or issued: that would mint new credential
   ids, issuance times and status-list indices, and sign new documents.
2. The service's own ``ler.verification.v1``, each record's events in ``record_version`` order
   (the processor's and the API's outboxes relay apart, so the log may hold them out of order;
   a duplicate publish of one version counts once): the record's state, version and decision,
   the audit trail, the credentials as published (id, signed document, both status entries,
   issuance time), the status lists they use, revocations, suspensions and appeals. Every time
   is the event's ``occurred_at``, which the live store writes as the transition's time.

Nothing is published. API-owned state no topic carries (reviewers, staff reads) is restored
from a backup. A record routed live whose outcome was still in the lost database's outbox (never
published) is left awaiting its issuer; the count is logged.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import func, select

from ler.avro import AvroError
from ler.processing import Message
from ler.replay import read_log
from ler.replay import replay as replay_log
from ler.topics import VERIFICATION
from services.verification.bootstrap import bootstrap, new_runner
from services.verification.domain import (
    AUTO,
    AWAITING_ISSUER,
    DECLINED_BY_PERSON,
    PENDING,
    REJECTED,
    REVOKED,
    SUSPENDED,
    VERIFIED,
    RoutingSubject,
    record_affiliated,
)
from services.verification.store import VerificationStore

log = logging.getLogger(__name__)
Event = dict[str, Any]
CHUNK = 500


async def replay_verification(database_url: str | None = None) -> int:
    ctx = bootstrap(database_url=database_url)
    try:
        return await replay_verification_store(ctx.store, ctx.kafka)
    finally:
        await ctx.store.close()


async def replay_verification_store(store: VerificationStore, kafka: Any) -> int:
    """Replay the inputs into ``store`` (empty), then the outcomes from ler.verification.v1."""
    store.replaying = True
    read = await replay_log(new_runner(store, emit=False), kafka)
    events: list[Event] = []

    async def collect(messages: list[Message]) -> None:
        for message in messages:
            try:
                record = store.codec.decode(message.value or b"")
            except AvroError:
                continue  # the service wrote this topic; nothing undecodable was ever there
            if record.get("record_id") and record.get("record_version") is not None:
                events.append(record)

    read += await read_log(kafka, [VERIFICATION.name], collect)
    await apply_outcomes(store, events)
    return read


async def apply_outcomes(store: VerificationStore, events: list[Event]) -> None:
    by_record: dict[str, dict[int, Event]] = defaultdict(dict)
    for event in events:
        by_record[str(event["record_id"])].setdefault(int(event["record_version"]), event)
    rebuild = Rebuild(store)
    ids = sorted(by_record)
    for start in range(0, len(ids), CHUNK):
        await rebuild.load(ids[start : start + CHUNK])
    missing = 0
    for record_id in ids:
        row = rebuild.records.get(record_id)
        if row is None:
            missing += 1  # its submission is not on ler.records.v1 (a lost topic)
            continue
        for _, event in sorted(by_record[record_id].items()):
            rebuild.apply(row, event)
    await rebuild.write()
    if missing:
        log.warning("replay: %d records have outcomes but no submission; left out", missing)
    awaiting = await _awaiting_routable(store)
    if awaiting:
        log.warning(
            "replay: %d records the live processor routed have no published outcome (their "
            "events were still in the lost outbox); they are left awaiting their issuer",
            awaiting,
        )


class Rebuild:
    """The outcomes of the records met, gathered in memory, then written in one transaction."""

    def __init__(self, store: VerificationStore) -> None:
        self.store = store
        self.records: dict[str, dict[str, Any]] = {}
        self.org_kinds: dict[str, str] = {}
        self.audit: list[dict[str, Any]] = []
        self.credentials: dict[str, dict[str, Any]] = {}
        self.suspensions: dict[str, dict[str, Any]] = {}
        self.entries: list[dict[str, Any]] = []
        self.purposes: dict[str, str] = {}
        self.appeals: dict[str, dict[str, Any]] = {}
        self.handlers: dict[str, Callable[[dict[str, Any], Event, datetime], None]] = {
            "RecordQueuedForReview": self._queued,
            "RecordVerified": self._verified,
            "RecordRejected": self._rejected,
            "AppealFiled": self._appeal_filed,
            "AppealDecided": self._appeal_decided,
            "CredentialRevoked": self._revoked,
            "CredentialSuspended": self._suspension,
            "CredentialSuspensionLifted": self._suspension,
        }

    async def load(self, record_ids: list[str]) -> None:
        r, o = self.store.records, self.store.organizations
        async with self.store.db.read() as conn:
            rows = (await conn.execute(select(r).where(r.c.record_id.in_(record_ids)))).mappings()
            found = {row["record_id"]: dict(row) for row in rows}
            org_ids = {row["organization_id"] for row in found.values() if row["organization_id"]}
            kinds = await conn.execute(
                select(o.c.organization_id, o.c.kind).where(o.c.organization_id.in_(org_ids))
            )
            self.org_kinds.update({k.organization_id: k.kind for k in kinds})
        self.records.update(found)

    def apply(self, row: dict[str, Any], event: Event) -> None:
        handler = self.handlers.get(str(event["event_type"]))
        if handler is None:
            return  # not a transition of this store
        at: datetime = event["occurred_at"]
        handler(row, event, at)
        row.update(version=int(event["record_version"]), updated_at=at)

    def _audit(self, row: dict[str, Any], event: Event, at: datetime, **detail: Any) -> None:
        self.audit.append(
            {
                "record_id": row["record_id"],
                "event_type": event["event_type"],
                "actor": event["actor"],
                "at": at,
                "detail": detail,
            }
        )

    def _queued(self, row: dict[str, Any], event: Event, at: datetime) -> None:
        row.update(state=PENDING, queue=event["queue"], policy_rule=event["policy_rule"])
        self._audit(row, event, at, policy_rule=event["policy_rule"])

    def _verified(self, row: dict[str, Any], event: Event, at: datetime) -> None:
        if event["queue"] == AUTO:  # routed and issued in one step: the rule is the policy's
            row.update(queue=AUTO, policy_rule=self._rule(row))
        credential_id = str(event["credential_id"])
        row.update(state=VERIFIED, credential_id=credential_id, decided_by=event["actor"])
        row["decided_at"] = at
        document = orjson.loads(event["credential"])
        slots = status_slots(document)
        list_id, index = slots["revocation"]
        self.credentials[credential_id] = {
            "credential_id": credential_id,
            "record_id": row["record_id"],
            "person_id": row["person_id"],
            "organization_id": row["organization_id"],
            "credential_type": event["credential_type"],
            "document": document,
            "list_id": list_id,
            "status_index": index,
            "revoked": False,
            "revoked_reason": None,
            "issued_at": at,
        }
        for purpose, (slot_list, slot_index) in slots.items():
            self.purposes.setdefault(slot_list, purpose)
            self.entries.append(
                {"list_id": slot_list, "status_index": slot_index, "credential_id": credential_id}
            )
        if "suspension" in slots:
            held_list, held_index = slots["suspension"]
            self.suspensions[credential_id] = {
                "credential_id": credential_id,
                "list_id": held_list,
                "status_index": held_index,
                "suspended": False,
                "reason_code": None,
                "note": None,
                "changed_by": None,
                "changed_at": None,
            }
        self._audit(row, event, at, credential_id=credential_id, queue=event["queue"])

    def _rule(self, row: dict[str, Any]) -> str:
        org = row["organization_id"]
        subject = RoutingSubject(
            row["submitter_kind"],
            row["record_type"],
            self.org_kinds.get(org) if org else None,
            org,
            affiliated=record_affiliated(row["submitter_kind"], row["data"]),
        )
        return self.store.policy.route(subject).rule

    def _rejected(self, row: dict[str, Any], event: Event, at: datetime) -> None:
        reason_code, note = event["reason_code"], event["note"]
        row.update(state=REJECTED, reason_code=reason_code, note=note, decided_by=event["actor"])
        row.update(decided_at=at, decision_version=int(event["record_version"]))
        if reason_code == DECLINED_BY_PERSON and event["actor"] == "person":
            self._audit(row, event, at, reason_code=reason_code)  # the decline's own entry
        else:
            self._audit(row, event, at, reason_code=reason_code, note=note)

    def _appeal_filed(self, row: dict[str, Any], event: Event, at: datetime) -> None:
        appeal_id = str(event["appeal_id"])
        self.appeals[appeal_id] = {
            "appeal_id": appeal_id,
            "record_id": row["record_id"],
            "person_id": row["person_id"],
            "appeal_of": event["appeal_of"],
            "contested_version": row["decision_version"],
            "statement": event["statement"],
            "state": "pending",
            "filed_at": at,
            "decided_by": None,
            "decided_at": None,
            "note": None,
        }
        self._audit(row, event, at, appeal_id=appeal_id, statement=event["statement"])

    def _appeal_decided(self, row: dict[str, Any], event: Event, at: datetime) -> None:
        appeal_id, decision, note = str(event["appeal_id"]), event["decision"], event["note"]
        appeal = self.appeals.get(appeal_id)
        if appeal is not None:
            appeal.update(state=decision, decided_by=event["actor"], decided_at=at, note=note)
        if decision == "upheld" and event["appeal_of"] == "rejection":
            row.update(reason_code=None, note=None)  # its RecordVerified follows
        self._audit(row, event, at, appeal_id=appeal_id, decision=decision, note=note)

    def _revoked(self, row: dict[str, Any], event: Event, at: datetime) -> None:
        credential_id, reason = str(event["credential_id"]), event["reason"]
        credential = self.credentials.get(credential_id)
        if credential is not None:
            credential.update(revoked=True, revoked_reason=reason)
        row.update(state=REVOKED, decided_by=event["actor"])
        row["decision_version"] = int(event["record_version"])
        self._audit(row, event, at, credential_id=credential_id, reason=reason)

    def _suspension(self, row: dict[str, Any], event: Event, at: datetime) -> None:
        suspend = event["event_type"] == "CredentialSuspended"
        credential_id = str(event["credential_id"])
        reason_code, note = event["reason_code"], event["note"]
        entry = self.suspensions.get(credential_id)
        if entry is not None:
            entry.update(suspended=suspend, reason_code=reason_code, note=note)
            entry.update(changed_by=event["actor"], changed_at=at)
        row["state"] = SUSPENDED if suspend else VERIFIED
        if suspend:
            row.update(decision_version=int(event["record_version"]), decided_by=event["actor"])
        self._audit(row, event, at, credential_id=credential_id, reason_code=reason_code, note=note)

    async def write(self) -> None:
        s = self.store
        lists = self._lists()
        async with s.db.transaction() as conn:
            ids = list(self.records)
            for start in range(0, len(ids), CHUNK):
                chunk = ids[start : start + CHUNK]
                await conn.execute(s.records.delete().where(s.records.c.record_id.in_(chunk)))
                await conn.execute(s.records.insert(), [self.records[i] for i in chunk])
            for table, rows in (
                (s.audit, self.audit),
                (s.credentials, list(self.credentials.values())),
                (s.status_lists, lists),
                (s.list_purposes, [{"list_id": k, "purpose": v} for k, v in self.purposes.items()]),
                (s.status_entries, self.entries),
                (s.suspensions, list(self.suspensions.values())),
                (s.appeals, list(self.appeals.values())),
            ):
                if rows:
                    await conn.execute(table.insert(), rows)

    def _lists(self) -> list[dict[str, Any]]:
        """Each list the credentials use: opened for (so created at) its first issuance."""
        issued = {c: row["issued_at"] for c, row in self.credentials.items()}
        opened: dict[str, datetime] = {}
        used: dict[str, int] = defaultdict(int)
        for entry in self.entries:
            list_id, at = entry["list_id"], issued[entry["credential_id"]]
            opened[list_id] = min(opened.get(list_id, at), at)
            used[list_id] += 1
        return [
            {"list_id": k, "size": self.store.status_list_size, "used": used[k], "created_at": at}
            for k, at in opened.items()
        ]


def status_slots(document: dict[str, Any]) -> dict[str, tuple[str, int]]:
    """The credential's status entries by purpose: (list id, index)."""
    status = document["credentialStatus"]
    return {
        e.get("statusPurpose", "revocation"): (
            str(e["statusListCredential"]).rsplit("/", 1)[1],
            int(e["statusListIndex"]),
        )
        for e in (status if isinstance(status, list) else [status])
    }


async def _awaiting_routable(store: VerificationStore) -> int:
    r, o = store.records, store.organizations
    async with store.db.read() as conn:
        count = await conn.scalar(
            select(func.count())
            .select_from(r.outerjoin(o, o.c.organization_id == r.c.organization_id))
            .where(
                r.c.state == AWAITING_ISSUER,
                r.c.organization_id.is_(None) | o.c.organization_id.is_not(None),
            )
        )
    return int(count or 0)
