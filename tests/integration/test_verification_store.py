"""The verifier's store on SQLite and PostgreSQL, driven through the kit's Runner without a broker:
a record that arrives before its organization waits and is routed when the organization does, a
duplicated record event issues one credential, a redelivered batch changes nothing, and status
list indices are distinct."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from ler.avro import default_codec
from ler.credentials import load_key_ring
from ler.credentials.multikey import generate_key_file
from ler.envelope import event, new_envelope
from ler.processing import Message
from ler.skills import load_taxonomy
from services.verification.bootstrap import new_runner
from services.verification.credentials import Issuer
from services.verification.domain import parse_policy
from services.verification.settings import DEFAULT_POLICY
from services.verification.store import VerificationStore

pytestmark = pytest.mark.integration
CODEC = default_codec()
DID = "did:web:registry.test"


@pytest.fixture
async def store(database_url: str, tmp_path: Path) -> AsyncIterator[VerificationStore]:
    generate_key_file(tmp_path / "key-1.json", f"{DID}#key-1", controller=DID)
    issuer = Issuer(
        load_key_ring(tmp_path), public_url="https://r.test", name="R", taxonomy=load_taxonomy()
    )
    policy = parse_policy(json.loads(DEFAULT_POLICY.read_text()))
    opened = VerificationStore(database_url, CODEC, issuer, policy)
    await opened.open()
    yield opened
    await opened.close()


class Log:
    """Messages at increasing offsets of one partition per topic."""

    def __init__(self) -> None:
        self.offsets: dict[str, int] = {}

    def message(self, topic: str, key: str, record: dict[str, Any]) -> Message:
        offset = self.offsets.get(topic, -1) + 1
        self.offsets[topic] = offset
        return Message(topic, 0, offset, key.encode(), CODEC.encode(record))


def organization(org_id: str) -> dict[str, Any]:
    return event(
        new_envelope("OrganizationRegistered", "enrollment"),
        organization_id=org_id,
        name="Sunny Days",
        kind="employer",
        api_key_sha256="a" * 64,
    )


def employment(person_id: str, org_id: str) -> dict[str, Any]:
    return event(
        new_envelope("EmploymentRecordSubmitted", "enrollment"),
        record_id=str(uuid.uuid4()),
        person_id=person_id,
        submitted_by=org_id,
        submitter_kind="organization",
        title="Lead Teacher",
        description=None,
        evidence=[],
        action="hired",
        start_date=datetime(2024, 1, 2, tzinfo=UTC).date(),
        end_date=None,
        soc_code="25-2011",
        affiliated=True,  # intake found the organization affiliated: auto-verification
    )


async def count(store: VerificationStore, table: Any) -> int:
    async with store.db.read() as conn:
        return int(await conn.scalar(select(func.count()).select_from(table)) or 0)


async def outgoing(store: VerificationStore) -> list[dict[str, Any]]:
    async with store.db.read() as conn:
        rows = (await conn.execute(select(store.outbox.c.value).order_by(store.outbox.c.id))).all()
    return [CODEC.decode(r.value) for r in rows]


async def test_records_wait_for_their_organization_and_issue_exactly_once(
    store: VerificationStore,
) -> None:
    runner = new_runner(store)
    await runner.load_positions()
    log = Log()
    person, org = str(uuid.uuid4()), str(uuid.uuid4())
    first, second = employment(person, org), employment(person, org)
    early = [log.message("ler.records.v1", person, first)]
    assert await runner.process(early) == 1
    assert await count(store, store.credentials) == 0  # its organization is not known yet

    batch = [
        log.message("ler.enrollment.v1", org, organization(org)),
        log.message("ler.records.v1", person, second),
        log.message("ler.records.v1", person, first),  # the same record again, at a new offset
    ]
    assert await runner.process(batch) == 3
    assert await runner.process(batch) == 0  # redelivered: already applied
    assert await count(store, store.credentials) == 2
    verified = [e for e in await outgoing(store) if e["event_type"] == "RecordVerified"]
    assert sorted(str(e["record_id"]) for e in verified) == sorted(
        [str(first["record_id"]), str(second["record_id"])]
    )
    assert {e["record_version"] for e in verified} == {1}
    assert {e["organization_id"] for e in verified} == {org}
    async with store.db.read() as conn:
        indices = (await conn.execute(select(store.credentials.c.status_index))).scalars().all()
    assert len(set(indices)) == 2
    # Each credential holds an index in a revocation list and one in a suspension list.
    assert await count(store, store.status_entries) == 4


async def test_a_record_with_a_bad_key_is_dead_lettered_and_nothing_is_issued(
    store: VerificationStore,
) -> None:
    runner = new_runner(store)
    await runner.load_positions()
    log = Log()
    person, org = str(uuid.uuid4()), str(uuid.uuid4())
    messages = [
        log.message("ler.enrollment.v1", org, organization(org)),
        log.message("ler.records.v1", str(uuid.uuid4()), employment(person, org)),
    ]
    await runner.process(messages)
    assert runner.dead_lettered == 1
    assert await count(store, store.credentials) == 0
    (dead,) = await outgoing(store)
    assert dead["event_type"] == "DeadLetterRecorded"
    assert "message key" in dead["error"]


@pytest.mark.postgres
async def test_sla_tick_skips_items_a_commit_holds_instead_of_waiting(
    postgres_server: str, tmp_path: Path
) -> None:
    """The SLA tick and a batch commit touch the same items; the tick must never wait on a
    row lock (two such waits in opposite order are a deadlock, measured in CI), so it skips
    the held item and emits it on a later tick, exactly once."""
    import asyncio
    from datetime import timedelta

    from services.verification.domain import AUTO
    from services.verification.sla import Budgets, ItemKey
    from services.verification.sla_store import SlaStore
    from tests.conftest import Databases

    # Row locks are PostgreSQL's; SQLite serializes writers, so no cycle can form there.
    databases = Databases("postgres", tmp_path, postgres_server)
    sla = SlaStore(databases.new_url(), CODEC, Budgets(10, 10, 10))
    await sla.open()
    try:
        submitted = datetime(2026, 1, 1, tzinfo=UTC)
        held, free = (
            ItemKey(f"auto:{n}", AUTO, str(uuid.uuid4()), str(uuid.uuid4()), None, submitted)
            for n in ("a", "b")
        )
        async with sla.db.transaction() as conn:
            await conn.execute(sla.items.insert(), [sla._row(held, 0), sla._row(free, 0)])
        later = submitted + timedelta(hours=1)
        async with sla.db.transaction() as blocker:
            await blocker.execute(
                sla.items.update().where(sla.items.c.item_id == held.item_id).values(partition=0)
            )
            emitted = await asyncio.wait_for(sla.emit_due(later, [0]), timeout=10)
            assert emitted == 2  # warning and breach of the free item only
        assert await sla.emit_due(later, [0]) == 2  # the held item, once released
        assert await sla.emit_due(later, [0]) == 0
    finally:
        await sla.close()
        databases.cleanup()
