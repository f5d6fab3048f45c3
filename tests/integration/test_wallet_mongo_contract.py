"""Issue 12, item 7: the wallet's MongoDB adapter keeps what the SQL one keeps.

- A token opens one wallet only (every adapter): a second person enrolled with a token already
  held gets no wallet, as on SQL (whose unique index ignores the insert); MongoDB's token index
  was not unique, so the token opened either wallet.
- The outbox publishes no id before the ids reserved ahead of it exist (MongoDB, on mongomock and
  over the wire on FerretDB): a writer that reserved 100 and has not inserted it yet holds back 101.
- A duplicate key during a rebalance overlap (two workers upserting one new document) is no
  proof the event was applied: each event is applied once its document exists.

Failed on main before the fix: the second person got the first one's token; the relay claimed 101
before 100 existed; on FerretDB verifications racing their record's first write were dropped.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from ler.outbox import OutgoingMessage
from services.wallet.bootstrap import WalletStore, new_runner
from services.wallet.mongo_outbox import MongoOutbox, message_fields
from services.wallet.store_mongo import MongoWalletStore
from tests.integration.test_wallet_store_contract import P1, P2, Log, store  # noqa: F401

pytestmark = pytest.mark.integration


async def test_a_token_opens_one_wallet_only(store: WalletStore) -> None:  # noqa: F811
    """As on SQL (a unique index, the insert ignored): a second person enrolled with a token
    already held gets no wallet, and the token still opens the first one's only."""
    log = Log()
    runner = new_runner(store)
    await runner.process([log.organization(), log.person(P1, "a" * 64)])
    await asyncio.wait_for(runner.process([log.person(P2, "a" * 64, minutes=1)]), 10)
    assert runner.stall is None
    assert await store.owner_of_token("a" * 64) == P1
    assert await store.wallet(P2) is None
    assert (await store.positions())[("ler.enrollment.v1", 0)] == 2


@pytest.fixture(params=["mongomock", "mongodb"])
async def mongo(request: pytest.FixtureRequest) -> Any:
    if request.param == "mongomock":
        url = "mongomock://wallet"
    else:
        url = str(request.getfixturevalue("mongodb_server"))
    adapter = MongoWalletStore(url, database=f"ler_test_{uuid.uuid4().hex[:8]}")
    await adapter.open()
    yield adapter
    await adapter.client.drop_database(adapter.db.name)
    await adapter.close()


def message(value: bytes) -> OutgoingMessage:
    return OutgoingMessage("ler.dlq.v1", b"k", value)


async def claimed(outbox: Any) -> list[bytes]:
    async with outbox.claim(10) as rows:
        return [r.value for r in rows]


async def test_the_outbox_waits_for_an_id_reserved_before_it(mongo: MongoWalletStore) -> None:
    for outbox in (mongo.outbox_source(), mongo.api_outbox_source()):
        await outbox.add([message(b"zero")])
        assert await claimed(outbox) == [b"zero"]
        reserved = await outbox.next_ids(1)  # writer A: reserved, not inserted yet
        await outbox.add([message(b"second")])  # writer B, after it
        assert await claimed(outbox) == []  # "second" waits for the id before it
        await outbox.add_once([{"_id": reserved, **message_fields(message(b"first"))}])
        assert await claimed(outbox) == [b"first", b"second"]
        assert await outbox.pending() == 0


async def test_an_id_reserved_and_never_written_holds_the_outbox_back_for_a_while_only(
    mongo: MongoWalletStore,
) -> None:
    outbox = mongo.outbox_source()
    outbox.gap_seconds = 0.5
    await outbox.next_ids(2)  # a writer that died between reserving and inserting
    await outbox.add([message(b"after")])
    assert await claimed(outbox) == []
    await asyncio.sleep(0.6)
    assert await claimed(outbox) == [b"after"]


async def test_an_id_given_up_by_its_writer_holds_nothing_back(mongo: MongoWalletStore) -> None:
    outbox = mongo.api_outbox_source()
    first = await outbox.next_ids(2)
    await outbox.void(range(first, first + 2))  # the write they were for did not happen
    await outbox.add([message(b"next")])
    assert await claimed(outbox) == [b"next"]


async def test_racing_first_writes_of_one_document_are_both_applied(
    mongo: MongoWalletStore,
) -> None:
    """Two workers during a rebalance overlap: one applies records, the other verifications,
    of the same new records at the same moment; each event is applied."""
    # Over the wire, a second client (its own connections); mongomock is one process's memory.
    wire = not mongo.url.startswith("mongomock://")
    second = MongoWalletStore(mongo.url, database=mongo.db.name) if wire else mongo
    log = Log()
    ids = [str(uuid.uuid4()) for _ in range(40)]
    records = [log.learning(P1, r, f"Course {i}", minutes=i) for i, r in enumerate(ids)]
    verifications = [
        log.verification(
            "RecordQueuedForReview", P1, r, 1, i, queue="manual_review", policy_rule="self"
        )
        for i, r in enumerate(ids)
    ]
    changes: list[Any] = []
    for store_, batch in ((mongo, records), (second, verifications)):
        runner = new_runner(store_)
        for m in batch:
            changes.append((store_, runner.plan([m])))

    async def apply(store_: MongoWalletStore, plan: Any) -> None:
        change, (topic, partition, offset) = plan.changes[0], plan.origins[0]
        await store_._apply(change, f"{topic}|{partition}", offset)

    pairs = list(zip(changes[: len(ids)], changes[len(ids) :], strict=True))
    for a, b in pairs:
        await asyncio.gather(apply(*a), apply(*b))
    docs = {d["_id"]: d async for d in mongo.records.find({"_id": {"$in": ids}})}
    assert sorted(docs) == sorted(ids)
    missing = [r for r in ids if "type" not in docs[r] or "verifications" not in docs[r]]
    assert missing == [], f"{len(missing)} of {len(ids)} events lost to a duplicate key"
    if wire:
        second.client.close()


async def test_one_relay_at_a_time_claims_and_another_takes_over_a_lapsed_lease(
    mongo: MongoWalletStore,
) -> None:
    """Two replicas' relays on one outbox: the second claims nothing while the first holds the
    lease (both publishing would interleave their copies of one key's events), and takes over
    once the first's lease lapses (its replica died)."""
    first = mongo.outbox_source()
    second = MongoOutbox(mongo.db["wallet_outbox"], mongo.db["wallet_counters"])
    first.lease_seconds = second.lease_seconds = 0.5
    await first.add([message(b"one"), message(b"two")])
    async with first.claim(1) as rows:
        assert [r.value for r in rows] == [b"one"]
        assert await claimed(second) == []  # during the first's pass
    assert await claimed(second) == []  # and while its lease lasts
    await asyncio.sleep(0.6)
    assert await claimed(second) == [b"two"]
    assert await claimed(first) == []  # now the second holds it
