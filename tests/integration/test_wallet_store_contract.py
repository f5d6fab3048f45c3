"""One contract, every adapter of the wallet store: SQLite, PostgreSQL, MongoDB.

MongoDB runs twice: on mongomock-motor (in-process, the quick check) and over the wire with motor
against a MongoDB-protocol server: FerretDB started by the tests (tests/engines.py), or the server
``LER_TEST_MONGODB_URL`` names.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from ler.avro import default_codec
from ler.envelope import event, new_envelope
from ler.outbox import OutgoingMessage
from ler.processing import Message, StalePositions
from ler.skills import SkillEvidence
from services.enrollment.domain import record_event
from services.wallet.bootstrap import WalletStore, new_runner, wallet_store
from services.wallet.domain import Share
from services.wallet.store_mongo import MongoWalletStore
from tests.conftest import Databases

pytestmark = pytest.mark.integration
CODEC = default_codec()
ORG = str(uuid.UUID(int=99))


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.postgres),
        "mongomock",
        "mongodb",
    ]
)
async def store(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[WalletStore]:
    if request.param in {"sqlite", "postgres"}:
        dbs = Databases(
            request.param,
            tmp_path,
            request.getfixturevalue("postgres_server") if request.param == "postgres" else None,
        )
        url = dbs.new_url()
    else:
        dbs = None
        url = (
            "mongomock://wallet"
            if request.param == "mongomock"
            else str(request.getfixturevalue("mongodb_server"))
        )
    adapter = wallet_store(url)
    if request.param == "mongodb":
        adapter = type(adapter)(url, database=f"ler_test_{uuid.uuid4().hex[:8]}")  # type: ignore[call-arg]
    await adapter.open()
    yield adapter
    if request.param == "mongodb":
        await adapter.client.drop_database(adapter.db.name)  # type: ignore[union-attr]
    await adapter.close()
    if dbs is not None:
        dbs.cleanup()


class Log:
    """Encoded events on two topics with their offsets, like the broker would hand them out."""

    def __init__(self) -> None:
        self.offsets: dict[tuple[str, int], int] = {}
        self.start = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)

    def message(self, topic: str, key: str, record: dict[str, Any], partition: int = 0) -> Message:
        offset = self.offsets.get((topic, partition), -1) + 1
        self.offsets[(topic, partition)] = offset
        return Message(topic, partition, offset, key.encode(), CODEC.encode(record))

    def envelope(self, event_type: str, minutes: int) -> Any:
        return new_envelope(event_type, "test", occurred_at=self.start + timedelta(minutes=minutes))

    def person(self, person_id: str, token_hash: str, minutes: int = 0) -> Message:
        record = event(
            self.envelope("PersonEnrolled", minutes),
            person_id=uuid.UUID(person_id),
            given_name="Ada",
            family_name="Lovelace",
            email="ada@example.org",
            birth_date=date(1990, 12, 10),
            county=None,
            education_level=None,
            demographics={"gender": "female"},
            access_token_sha256=token_hash,
            possible_duplicate_of=None,
        )
        return self.message("ler.enrollment.v1", person_id, record)

    def organization(self) -> Message:
        record = event(
            self.envelope("OrganizationRegistered", 0),
            organization_id=uuid.UUID(ORG),
            name="Bright Start",
            kind="training_provider",
        )
        return self.message("ler.enrollment.v1", ORG, record)

    def learning(self, person_id: str, record_id: str, title: str, minutes: int) -> Message:
        record = record_event(
            {
                "type": "learning",
                "person_id": person_id,
                "title": title,
                "completed_on": date(2026, 2, 1),
                "hours": 6.0,
                "competencies": ["Child Development"],
            },
            uuid.UUID(record_id),
            submitted_by=ORG,
            submitter_kind="organization",
            correlation_id="c",
        )
        record["occurred_at"] = self.start + timedelta(minutes=minutes)
        return self.message("ler.records.v1", person_id, record)

    def verification(
        self,
        event_type: str,
        person_id: str,
        record_id: str,
        version: int,
        minutes: int,
        **extra: Any,
    ) -> Message:
        schema = CODEC.registry.latest(event_type).raw
        fields = {f["name"] for f in schema["fields"]}
        payload: dict[str, Any] = {
            "person_id": uuid.UUID(person_id),
            "record_id": uuid.UUID(record_id),
            "organization_id": ORG,
            "submitted_at": self.start,
            "record_type": "learning",
            "actor": "system",
            "record_version": version,
            **extra,
        }
        record = event(
            self.envelope(event_type, minutes), **{k: v for k, v in payload.items() if k in fields}
        )
        return self.message("ler.verification.v1", person_id, record)


P1, P2 = str(uuid.UUID(int=1)), str(uuid.UUID(int=2))
R1, R2, R3 = (str(uuid.UUID(int=i)) for i in (11, 12, 13))


def scenario() -> list[Message]:
    log = Log()
    return [
        log.organization(),
        log.person(P1, "a" * 64),
        log.person(P2, "b" * 64, minutes=1),
        log.learning(P1, R1, "Health and Safety", minutes=2),
        log.learning(P1, R2, "Observation", minutes=3),
        log.learning(P2, R3, "Family Engagement", minutes=4),
        # R1 is verified; R2 is queued, rejected, appealed: its later events arrive first.
        log.verification(
            "RecordVerified",
            P1,
            R1,
            1,
            5,
            credential_id=str(uuid.UUID(int=501)),
            credential="{}",
            credential_type="OpenBadgeCredential",
            queue="auto_verification",
        ),
        log.verification(
            "AppealFiled",
            P1,
            R2,
            3,
            8,
            appeal_id=uuid.UUID(int=701),
            appeal_of="rejection",
            statement="I did finish it",
            queue="appeal",
        ),
        log.verification(
            "RecordQueuedForReview",
            P1,
            R2,
            1,
            6,
            queue="manual_review",
            policy_rule="self-reported",
        ),
        log.verification(
            "RecordRejected",
            P1,
            R2,
            2,
            7,
            reason_code="insufficient_evidence",
            note=None,
            queue="manual_review",
        ),
    ]


async def test_the_projection_reads_the_same_on_every_adapter(store: WalletStore) -> None:
    runner = new_runner(store)
    await runner.process(scenario())
    assert await store.owner_of_token("a" * 64) == P1
    assert await store.owner_of_token("c" * 64) is None
    wallet = await store.wallet(P1)
    assert wallet is not None
    assert wallet["display_name"] == "Ada Lovelace"
    assert "gender" not in str(wallet)
    by_id = {r["record_id"]: r for r in wallet["records"]}
    assert [r["record_id"] for r in wallet["records"]] == [R1, R2]
    assert by_id[R1]["status"] == "verified"
    assert by_id[R1]["credential_id"] == str(uuid.UUID(int=501))
    assert by_id[R1]["submitted_by"] == {"kind": "organization", "id": ORG, "name": "Bright Start"}
    assert by_id[R1]["completed_on"] == "2026-02-01"
    assert by_id[R2]["status"] == "rejected"
    assert by_id[R2]["rejection"]["reason_code"] == "insufficient_evidence"
    assert by_id[R2]["appeal"]["state"] == "pending"
    assert await store.wallet(str(uuid.UUID(int=3))) is None
    assert await store.positions() == {
        ("ler.enrollment.v1", 0): 2,
        ("ler.records.v1", 0): 2,
        ("ler.verification.v1", 0): 3,
    }


async def test_every_adapter_holds_the_same_rows(store: WalletStore, tmp_path: Any) -> None:
    reference = wallet_store(f"sqlite+aiosqlite:///{tmp_path / 'reference.db'}")
    await reference.open()
    try:
        await new_runner(reference).process(scenario())
        await new_runner(store).process(scenario())
        assert await store.dump() == await reference.dump()
    finally:
        await reference.close()


async def test_redelivery_and_duplicates_change_nothing(store: WalletStore) -> None:
    messages = scenario()
    await new_runner(store).process(messages)
    before = await store.dump()
    # A restarted runner that had not learnt the positions is refused as a whole ...
    fresh = new_runner(store)
    with pytest.raises(StalePositions):
        await store.commit(fresh.plan(messages))
    # ... and one that did learn them skips everything.
    await fresh.load_positions()
    assert await fresh.process(messages) == 0
    # The same event again at a new offset (a producer retry) changes nothing either.
    again = [Message(m.topic, m.partition, m.offset + 100, m.key, m.value) for m in messages]
    await fresh.process(again)
    assert await store.dump() == before


async def test_dead_letters_wait_in_the_outbox_until_relayed(store: WalletStore) -> None:
    runner = new_runner(store)
    await runner.process([Message("ler.records.v1", 1, 0, b"k", b"\x00garbage"), *scenario()[:2]])
    source = store.outbox_source()
    assert await source.pending() == 1
    async with source.claim(10) as rows:
        assert [r.topic for r in rows] == ["ler.dlq.v1"]
        assert CODEC.decode(rows[0].value)["original_value"] == b"\x00garbage"
    assert await source.pending() == 0
    assert await store.positions() == {("ler.records.v1", 1): 0, ("ler.enrollment.v1", 0): 1}


def evidence(store_evidence: list[SkillEvidence]) -> list[tuple[str, str, bool, str | None]]:
    return [(e.record_id, e.skill_id, e.verified, e.credential_id) for e in store_evidence]


CHILD_DEVELOPMENT = "ler:ece.child-development"


async def test_demographics_and_skill_evidence_follow_the_log(store: WalletStore) -> None:
    messages = scenario()
    runner = new_runner(store)
    await runner.process(messages[:6])  # persons and records, no verification yet
    assert evidence(await store.skill_evidence(P1)) == [
        (R1, CHILD_DEVELOPMENT, False, None),
        (R2, CHILD_DEVELOPMENT, False, None),
    ]
    await runner.process(messages[6:])
    credential_id = str(uuid.UUID(int=501))
    assert evidence(await store.skill_evidence(P1)) == [
        (R1, CHILD_DEVELOPMENT, True, credential_id),
        (R2, CHILD_DEVELOPMENT, False, None),
    ]
    assert evidence(await store.skill_evidence(P1, [R1])) == [
        (R1, CHILD_DEVELOPMENT, True, credential_id)
    ]
    assert evidence(await store.skill_evidence(P1, [R3])) == []  # someone else's record
    assert await store.skill_evidence(str(uuid.UUID(int=3))) == []
    assert await store.demographics_of(P1) == {
        "birth_date": "1990-12-10",
        "demographics": {"gender": "female"},
    }
    assert await store.demographics_of(str(uuid.UUID(int=3))) == {}


T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


def new_share(number: int, created_at: datetime, audience: str = "Company B") -> Share:
    return Share(
        share_id=str(uuid.UUID(int=900 + number)),
        person_id=P1,
        token_sha256=f"{number:x}" * 64,
        audience=audience,
        record_ids=(R1,),
        include_demographics=number % 2 == 0,
        created_at=created_at,
        expires_at=datetime.now(UTC).replace(microsecond=0) + timedelta(days=1),
    )


def note(text: str) -> list[OutgoingMessage]:
    return [OutgoingMessage("ler.notifications.v1", P1.encode(), text.encode())]


async def published(store: WalletStore) -> list[bytes]:
    source = store.api_outbox_source()
    async with source.claim(100) as rows:
        return [bytes(r.value) for r in rows]


async def test_shares_are_kept_audited_and_published(store: WalletStore) -> None:
    await new_runner(store).process(scenario())
    first, second = new_share(1, T0), new_share(2, T0 + timedelta(minutes=1), "Company C")
    await store.create_share(first, note("created 1"))
    await store.create_share(second, note("created 2"))
    assert await store.share(P1, first.share_id) == first
    assert await store.share(P2, first.share_id) is None
    assert await store.share_by_token(second.token_sha256) == second
    assert await store.share_by_token("f" * 64) is None

    opened, matched = T0 + timedelta(minutes=2), T0 + timedelta(minutes=3)
    await store.record_access(first, "share_opened", opened, note("opened"))
    await store.record_access(
        first, "share_matched", matched, note("matched"), {"role": "childcare-worker"}
    )
    revoked_at = T0 + timedelta(minutes=4)
    assert await store.revoke_share(first, revoked_at, note("revoked")) is True
    assert await store.revoke_share(first, revoked_at, note("revoked again")) is False
    assert await store.share(P1, first.share_id) == Share(
        **{**{f: getattr(first, f) for f in Share.__slots__}, "revoked_at": revoked_at}
    )

    assert await store.api_outbox_source().pending() == 5
    assert await published(store) == [
        b"created 1",
        b"created 2",
        b"opened",
        b"matched",
        b"revoked",
    ]
    assert await store.api_outbox_source().pending() == 0
    assert await store.outbox_source().pending() == 0  # the projector's outbox is apart

    shares = await store.shares_of(P1)
    assert [s["share_id"] for s in shares] == [second.share_id, first.share_id]  # newest first
    assert shares[1] == {
        "share_id": first.share_id,
        "audience": "Company B",
        "record_ids": [R1],
        "include_demographics": False,
        "created_at": T0.isoformat(),
        "expires_at": first.expires_at.isoformat(),
        "revoked_at": revoked_at.isoformat(),
        "state": "revoked",
        "accesses": [
            {"at": opened.isoformat(), "action": "share_opened", "audience": "Company B"},
            {
                "at": matched.isoformat(),
                "action": "share_matched",
                "audience": "Company B",
                "role": "childcare-worker",
            },
        ],
    }
    assert shares[0]["state"] == "active"
    assert shares[0]["accesses"] == []
    assert await store.shares_of(P2) == []

    audit = await store.audit_of(P1)
    assert [(e["action"], e["actor"], e["share_id"]) for e in audit] == [
        ("share_revoked", "person", first.share_id),
        ("share_matched", f"share:{first.share_id}", first.share_id),
        ("share_opened", f"share:{first.share_id}", first.share_id),
        ("share_created", "person", second.share_id),
        ("share_created", "person", first.share_id),
    ]
    assert audit[1] == {
        "at": matched.isoformat(),
        "actor": f"share:{first.share_id}",
        "action": "share_matched",
        "share_id": first.share_id,
        "audience": "Company B",
        "role": "childcare-worker",
    }
    assert [e["action"] for e in await store.audit_of(P1, limit=2)] == [
        "share_revoked",
        "share_matched",
    ]
    assert await store.audit_of(P2) == []


async def test_audit_entries_at_the_same_instant_keep_their_order(store: WalletStore) -> None:
    share = new_share(3, T0)
    await store.create_share(share, [])
    for action in ("share_opened", "share_qr_opened", "share_opened"):
        await store.record_access(share, action, T0, [])
    assert [e["action"] for e in await store.audit_of(P1)] == [
        "share_opened",
        "share_qr_opened",
        "share_opened",
        "share_created",
    ]
    accesses = (await store.shares_of(P1))[0]["accesses"]
    assert [a["action"] for a in accesses] == ["share_opened", "share_qr_opened", "share_opened"]
    assert await store.api_outbox_source().pending() == 0


class CrashingMongoStore(MongoWalletStore):
    """Dies once after a share's write, before its events reach the API outbox."""

    crash = True

    async def _hand_over(self, share_id: str, pending: list[dict[str, Any]]) -> None:
        if self.crash:
            self.crash = False
            raise ConnectionError("the API died")
        await super()._hand_over(share_id, pending)


@pytest.mark.parametrize("server", ["mongomock", "mongodb"])
async def test_mongo_keeps_a_share_event_a_crash_left_behind(
    server: str, request: pytest.FixtureRequest
) -> None:
    url = (
        "mongomock://wallet" if server == "mongomock" else request.getfixturevalue("mongodb_server")
    )
    database = f"ler_test_{uuid.uuid4().hex[:8]}"
    store = CrashingMongoStore(str(url), database=database)
    await store.open()
    share = new_share(4, T0)
    with pytest.raises(ConnectionError):
        await store.create_share(share, note("created"))
    assert await store.share(P1, share.share_id) == share  # the share and its audit stand
    assert [e["action"] for e in await store.audit_of(P1)] == ["share_created"]
    assert await store.api_outbox_source().pending() == 0
    await store.open()  # as at the next start: stray events are handed over
    assert await published(store) == [b"created"]
    await store.open()
    assert await store.api_outbox_source().pending() == 0  # and only once
    await store.client.drop_database(database)
    await store.close()


async def test_a_reset_access_token_replaces_the_old_one_on_every_adapter(
    store: WalletStore,
) -> None:
    """Issue 11, item 8: ``PersonAccessTokenReset`` (and a later redelivery of it) leaves only the
    new token opening the wallet; an organization's key change is nothing the wallet keeps."""
    log = Log()
    runner = new_runner(store)
    messages = scenario()
    reset = event(
        log.envelope("PersonAccessTokenReset", 9),
        person_id=uuid.UUID(P1),
        access_token_sha256="d" * 64,
    )
    key_change = event(
        log.envelope("OrganizationApiKeyChanged", 9),
        organization_id=uuid.UUID(ORG),
        api_key_sha256=None,
        changed_by="admin",
    )
    offset = max(m.offset for m in messages if m.topic == "ler.enrollment.v1") + 1
    tail = [
        Message("ler.enrollment.v1", 0, offset, P1.encode(), CODEC.encode(reset)),
        Message("ler.enrollment.v1", 0, offset + 1, ORG.encode(), CODEC.encode(key_change)),
    ]
    await runner.process(messages + tail)
    assert await store.owner_of_token("a" * 64) is None
    assert await store.owner_of_token("d" * 64) == P1
    assert await store.owner_of_token("b" * 64) == P2
    await runner.process(tail)  # redelivered: nothing changes
    assert await store.owner_of_token("d" * 64) == P1
