"""Issue 12, item 4, on SQLite and PostgreSQL: a person is never told a record's state that no
longer holds. A record's transitions leave the verification service through two outboxes (its
API's and its verifier's), so a suspension can be read after the lifting that ended it: a notice
whose ``record_version`` is below one already noticed for the record is kept as ``superseded``
and never sent. Transitions read in order are each noticed.

Failed on main before the fix: the stale suspension notice was queued, and sent after the lifting.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from ler.avro import default_codec
from ler.envelope import event, new_envelope
from ler.processing import Message
from services.notifications.bootstrap import notifications_runner
from services.notifications.store import SqlNotificationStore
from tests.integration.test_consent_withdrawal import Log, person_enrolled

pytestmark = pytest.mark.integration
CODEC = default_codec()
TOPIC = "ler.verification.v1"


def transition(
    log: Log, event_type: str, person_id: str, record_id: str, version: int, **extra: Any
) -> Message:
    fields = {f["name"] for f in CODEC.registry.latest(event_type).raw["fields"]}
    payload = {
        "person_id": person_id,
        "record_id": record_id,
        "organization_id": None,
        "record_type": "credential",
        "actor": "reviewer",
        "record_version": version,
        "submitted_at": datetime.now(UTC) - timedelta(hours=1),
        "credential_id": str(uuid.uuid4()),
        "reason_code": "under_investigation",
        "note": None,
        "reason": "issued in error",
        "queue": "manual_review",
        "credential_type": "CDA",
        "credential": "{}",
        **extra,
    }
    record = event(
        new_envelope(event_type, "verification"),
        **{k: v for k, v in payload.items() if k in fields},
    )
    offset = log.offsets[TOPIC] = log.offsets.get(TOPIC, -1) + 1
    return Message(TOPIC, 0, offset, person_id.encode(), CODEC.encode(record))


async def states(store: SqlNotificationStore, person_id: str) -> dict[str, str]:
    m = store.t.messages
    async with store.db.read() as conn:
        rows = await conn.execute(select(m.c.kind, m.c.state).where(m.c.person_id == person_id))
        return {r.kind: r.state for r in rows}


async def test_a_notice_older_than_one_already_given_is_never_sent(database_url: str) -> None:
    store = SqlNotificationStore(database_url)
    await store.open()
    runner = notifications_runner(store, emit=False)
    await runner.load_positions()
    log = Log()
    reversed_person, in_order = str(uuid.uuid4()), str(uuid.uuid4())
    held, revoked = str(uuid.uuid4()), str(uuid.uuid4())
    await runner.process(person_enrolled(log, reversed_person) + person_enrolled(log, in_order))

    # Suspended (version 4), then lifted (version 5); the log holds the lifting first.
    lifted = transition(log, "CredentialSuspensionLifted", reversed_person, held, 5)
    suspended = transition(log, "CredentialSuspended", reversed_person, held, 4)
    await runner.process([lifted])
    await runner.process([suspended])
    assert await states(store, reversed_person) == {
        "credential.suspension_lifted": "queued",
        "credential.suspended": "superseded",
    }

    # Verified (version 2), then revoked (version 3), read in order in one batch: both told.
    await runner.process(
        [
            transition(log, "RecordVerified", in_order, revoked, 2, queue="auto_verification"),
            transition(log, "CredentialRevoked", in_order, revoked, 3),
        ]
    )
    assert await states(store, in_order) == {
        "record.verified": "queued",
        "credential.revoked": "queued",
    }
    await runner.process([suspended])  # redelivered: still never sent
    assert (await states(store, reversed_person))["credential.suspended"] == "superseded"
    await store.close()
