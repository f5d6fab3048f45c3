"""Revocation is final (Bitstring Status List: a revocation cannot be undone), and status list
allocation neither races nor reuses an index when issuers run side by side (SQLite and
PostgreSQL; the concurrent case matters on PostgreSQL, where transactions really overlap), for
revocation and suspension lists alike."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from ler.processing import Message
from services.verification.bootstrap import new_runner
from services.verification.store import Caller, VerificationStore
from tests.conftest import Databases
from tests.integration.test_verification_store import (
    CODEC,
    Log,
    employment,
    organization,
    store,
)

pytestmark = pytest.mark.integration
_ = store  # the fixture, imported for these tests


async def issued(store: VerificationStore, person: str) -> tuple[str, str]:
    """One auto-verified employment record of ``person``: its record id and credential id."""
    runner = new_runner(store)
    await runner.load_positions()
    log = Log()
    org = str(uuid.uuid4())
    record = employment(person, org)
    await runner.process(
        [
            log.message("ler.enrollment.v1", org, organization(org)),
            log.message("ler.records.v1", person, record),
        ]
    )
    c = store.credentials
    async with store.db.read() as conn:
        credential_id = await conn.scalar(
            select(c.c.credential_id).where(c.c.record_id == str(record["record_id"]))
        )
    assert credential_id, "the record was not auto-verified"
    return str(record["record_id"]), str(credential_id)


async def status_of(store: VerificationStore, credential_id: str) -> tuple[str, int]:
    c = store.credentials
    async with store.db.read() as conn:
        row = (
            await conn.execute(
                select(c.c.list_id, c.c.status_index).where(c.c.credential_id == credential_id)
            )
        ).one()
    return row.list_id, row.status_index


async def test_an_upheld_appeal_of_a_revocation_issues_a_new_credential(
    store: VerificationStore,
) -> None:
    person = str(uuid.uuid4())
    record_id, old = await issued(store, person)
    await store.revoke(old, "issued in error", Caller("admin"))
    old_list, old_index = await status_of(store, old)
    appeal = await store.file_appeal(record_id, person, "the employer confirms the hire")
    decided = await store.decide_appeal(
        appeal["appeal_id"], "upheld", "confirmed", "reviewer:" + str(uuid.uuid4())
    )

    new = decided["credential_id"]
    assert new != old, "the revoked credential was reinstated (its bit cleared)"
    found = await store.status_list(old_list)
    assert found is not None
    assert old_index in found[1], "a revocation bit was cleared"
    new_list, new_index = await status_of(store, new)
    assert (new_list, new_index) != (old_list, old_index)
    now_revoked = (await store.status_list(new_list) or (0, []))[1]
    assert new_index not in now_revoked
    async with store.db.read() as conn:
        a = store.api_outbox
        values = (await conn.execute(select(a.c.value).order_by(a.c.id))).scalars().all()
    commands = [CODEC.decode(v) for v in values]
    events = [e for e in commands if str(e.get("record_id")) == record_id]
    kinds = [e["event_type"] for e in events]
    assert "CredentialReinstated" not in kinds
    assert kinds[-2:] == ["AppealDecided", "RecordVerified"]
    assert events[-1]["credential_id"] == new
    assert events[-1]["queue"] == "appeal"


@pytest.fixture
async def issuers(
    databases: Databases, tmp_path: Path, store: VerificationStore
) -> AsyncIterator[list[VerificationStore]]:
    """Three verifier stores on one database, as three replicas of the verifier would be, with
    status lists of 8 indices so that new lists are opened while they race."""
    others = [
        VerificationStore(str(store.db.url), store.codec, store.issuer, store.policy)
        for _ in range(2)
    ]
    for other in others:
        await other.open()
    everyone = [store, *others]
    for one in everyone:
        one.status_list_size = 8
    yield everyone
    for other in others:
        await other.close()


async def test_concurrent_issuers_never_share_an_index_or_lose_a_record(
    issuers: list[VerificationStore],
) -> None:
    per_issuer = 12

    async def issue_many(store: VerificationStore, partition: int) -> int:
        """One replica: its own partition of each topic, as a consumer group would assign."""
        runner = new_runner(store)
        await runner.load_positions()
        org = str(uuid.uuid4())

        def message(topic: str, offset: int, key: str, value: dict[str, Any]) -> Message:
            return Message(topic, partition, offset, key.encode(), CODEC.encode(value))

        registered = {**organization(org), "api_key_sha256": uuid.uuid4().hex * 2}
        await runner.process([message("ler.enrollment.v1", 0, org, registered)])
        for offset in range(per_issuer):
            person = str(uuid.uuid4())
            await runner.process(
                [message("ler.records.v1", offset, person, employment(person, org))]
            )
        return runner.dead_lettered

    dead = await asyncio.gather(*(issue_many(s, n) for n, s in enumerate(issuers)))
    assert dead == [0] * len(issuers), "a record was dead-lettered by an allocation race"
    store = issuers[0]
    c, lists, held = store.credentials, store.status_lists, store.suspensions
    p = store.list_purposes
    async with store.db.read() as conn:
        revocation = (await conn.execute(select(c.c.list_id, c.c.status_index))).all()
        suspension = (await conn.execute(select(held.c.list_id, held.c.status_index))).all()
        used = dict((await conn.execute(select(lists.c.list_id, lists.c.used))).all())
        purposes = dict((await conn.execute(select(p.c.list_id, p.c.purpose))).all())
    # Every credential has a revocation and a suspension entry, in lists of those purposes.
    assert len(revocation) == len(suspension) == per_issuer * len(issuers)
    assert {purposes[list_id] for list_id, _ in revocation} == {"revocation"}
    assert {purposes[list_id] for list_id, _ in suspension} == {"suspension"}
    slots = [*revocation, *suspension]
    assert len(set(slots)) == len(slots), "two credentials share a status index"
    assert all(0 <= index < 8 for _, index in slots)
    per_list: dict[str, int] = {}
    for list_id, _ in slots:
        per_list[list_id] = per_list.get(list_id, 0) + 1
    # Every list counts exactly the indices handed out of it. Two issuers racing to open a
    # list may leave one opened but not used yet: it is the next to fill, never skipped.
    assert per_list == {list_id: n for list_id, n in used.items() if n}
    assert all(n <= 4 for n in per_list.values())  # a list is left once half of it is used
