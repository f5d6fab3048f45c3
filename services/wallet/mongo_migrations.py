"""Versioned index and document migrations of the wallet's MongoDB store.

MongoDB has no schema to migrate, but its indexes (a unique one above all) and the shape of its
documents change between releases. Each migration has a number, a description and a coroutine
taking the database; applied ones are recorded in ``wallet_migrations`` (``_id`` the number). A
migration must be safe to run twice (``create_index`` is; a document migration filters on the old
shape), because two migrators starting at once may both run one before either records it.

``ler migrate wallet`` applies them; at open the store migrates itself in the embedded and
development modes and refuses to start in production while one is pending (docs/operations.md).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ler.migrations import StoreBehind
from services.wallet.mongo_outbox import MongoOutbox

COLLECTION = "wallet_migrations"


@dataclass(frozen=True)
class MongoMigration:
    number: int
    description: str
    apply: Callable[[Any], Awaitable[None]]


async def _release_indexes(db: Any) -> None:
    """The indexes release e18da97 created at every open."""
    await db["wallet_persons"].create_index("token_sha256")
    await db["wallet_records"].create_index([("person_id", 1), ("submitted_at", 1), ("_id", 1)])
    await db["wallet_shares"].create_index("token_sha256", unique=True)
    await db["wallet_shares"].create_index([("person_id", 1), ("created_at", -1)])
    await db["wallet_shares"].create_index("pending.queued_at", sparse=True)


async def _unique_tokens_and_outbox_marks(db: Any) -> None:
    """A token opens one wallet (the index was not unique); each outbox gets its relayed mark
    (services/wallet/mongo_outbox.py); audit entries get their own counter."""
    persons = db["wallet_persons"]
    indexes = await persons.index_information()
    old = indexes.get("token_sha256_1")
    if old is not None and not old.get("unique"):
        await persons.drop_index("token_sha256_1")
    await persons.create_index("token_sha256", unique=True, name="token_sha256_1")
    counters = db["wallet_counters"]
    for collection, counter in (("wallet_outbox", "outbox"), ("wallet_api_outbox", "api_outbox")):
        await MongoOutbox(db[collection], counters, collection, counter).initial_mark()
    shared = await counters.find_one({"_id": "api_outbox"})
    if await counters.find_one({"_id": "api_audit"}) is None:
        # Audit entries were numbered by the API outbox's counter: go on from there.
        await counters.update_one(
            {"_id": "api_audit"},
            {"$setOnInsert": {"next": int(shared["next"]) if shared else 0}},
            upsert=True,
        )


MIGRATIONS: tuple[MongoMigration, ...] = (
    MongoMigration(1, "indexes of release e18da97", _release_indexes),
    MongoMigration(
        2,
        "unique token index; outbox relayed marks; audit counter",
        _unique_tokens_and_outbox_marks,
    ),
)


def head() -> int:
    return max(m.number for m in MIGRATIONS)


async def applied(db: Any) -> set[int]:
    return {int(doc["_id"]) async for doc in db[COLLECTION].find({}, {"_id": 1})}


async def upgrade(db: Any) -> list[int]:
    """Apply every migration not recorded yet, in order; returns the numbers applied."""
    done = await applied(db)
    ran: list[int] = []
    for migration in sorted(MIGRATIONS, key=lambda m: m.number):
        if migration.number in done:
            continue
        await migration.apply(db)
        await db[COLLECTION].update_one(
            {"_id": migration.number},
            {
                "$setOnInsert": {
                    "description": migration.description,
                    "applied_at": datetime.now(UTC).isoformat(),
                }
            },
            upsert=True,
        )
        ran.append(migration.number)
    return ran


async def ensure(db: Any, *, migrate: bool) -> None:
    if migrate:
        await upgrade(db)
        return
    done = await applied(db)
    unknown = sorted(done - {m.number for m in MIGRATIONS})
    if unknown:
        raise StoreBehind(
            f"the wallet MongoDB store has migrations {unknown} this release does not know "
            "(made by a newer release?)"
        )
    pending = sorted({m.number for m in MIGRATIONS} - done)
    if pending:
        raise StoreBehind(
            f"the wallet MongoDB store lacks migrations {pending} (this release needs "
            f"{head()}): run `ler migrate wallet` (production never migrates at start-up)"
        )
