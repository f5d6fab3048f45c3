"""The wallet's MongoDB migrations on FerretDB: a store made by release e18da97 (its indexes,
documents, no migrations recorded) is migrated with its documents kept and its migrations recorded;
production refuses a store with a migration pending and names ``ler migrate wallet``."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from pymongo.errors import DuplicateKeyError

from ler.migrations import StoreBehind
from services.wallet import mongo_migrations
from services.wallet.store_mongo import MongoWalletStore

pytestmark = pytest.mark.integration


@pytest.fixture
async def store(mongodb_server: str) -> AsyncIterator[MongoWalletStore]:
    adapter = MongoWalletStore(mongodb_server, database=f"ler_test_{uuid.uuid4().hex[:8]}")
    yield adapter
    await adapter.client.drop_database(adapter.db.name)
    adapter.client.close()


async def make_release_store(store: MongoWalletStore) -> None:
    """What release e18da97 left: the indexes its open() made, documents, no migrations record."""
    await store.persons.create_index("token_sha256")
    await store.shares.create_index("token_sha256", unique=True)
    await store.persons.insert_one({"_id": "p1", "display_name": "P.", "token_sha256": "t1"})
    await store.shares.insert_one({"_id": "s1", "person_id": "p1", "token_sha256": "k1"})
    # An event waiting in the outbox, its id reserved from the counter.
    await store.db["wallet_counters"].insert_one({"_id": "outbox", "next": 8})
    await store.db["wallet_outbox"].insert_one(
        {"_id": 7, "topic": "ler.dlq.v1", "key": b"k", "value": b"waiting", "headers": b"[]"}
    )


async def test_a_release_store_is_migrated_with_its_documents(
    store: MongoWalletStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    await make_release_store(store)
    monkeypatch.setenv("LER_ENV", "production")
    with pytest.raises(StoreBehind, match="run `ler migrate wallet`"):
        await store.open()
    assert await mongo_migrations.upgrade(store.db) == [1, 2]
    assert await mongo_migrations.upgrade(store.db) == []  # recorded: applied once
    recorded = await store.db[mongo_migrations.COLLECTION].find_one({"_id": 1})
    assert recorded is not None
    assert recorded["description"] == "indexes of release e18da97"
    assert await store.persons.count_documents({}) == 1
    indexes = await store.records.index_information()
    assert any(spec["key"][0][0] == "person_id" for spec in indexes.values())
    with pytest.raises(DuplicateKeyError):  # the unique share token index stands
        await store.shares.insert_one({"_id": "s2", "person_id": "p1", "token_sha256": "k1"})
    with pytest.raises(DuplicateKeyError):  # migration 2: a person's token is unique too
        await store.persons.insert_one({"_id": "p2", "display_name": "Q.", "token_sha256": "t1"})
    await store.open()  # production accepts the migrated store
    assert await store.owner_of_token("t1") == "p1"
    async with store.outbox_source().claim(10) as rows:  # the relayed mark starts before it
        assert [r.value for r in rows] == [b"waiting"]


async def test_the_embedded_mode_migrates_at_open(
    store: MongoWalletStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LER_ENV", "embedded")
    await store.open()
    assert await mongo_migrations.applied(store.db) == {1, 2}


async def test_a_store_from_a_newer_release_is_refused(
    store: MongoWalletStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    await store.db[mongo_migrations.COLLECTION].insert_one({"_id": 99, "description": "future"})
    await store.db[mongo_migrations.COLLECTION].insert_one({"_id": 1, "description": "x"})
    monkeypatch.setenv("LER_ENV", "production")
    with pytest.raises(StoreBehind, match="does not know"):
        await store.open()
