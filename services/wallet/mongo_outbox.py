"""An outbox as a MongoDB collection, relayed in id order with nothing overtaking.

MongoDB has no sequence that is assigned at insert: a writer reserves ids (``next_ids``, one
counter document) and inserts its messages afterwards, so id 101 can exist before 100 does. The
relay therefore publishes only the run of ids that follows the last one it published (the
``<counter>.relayed`` mark in the counters collection): a missing id holds back every later one,
until its writer inserts it, gives it up (``void``: a message that is never published), or
``gap_seconds`` pass (the writer died between reserving and inserting; the wallet API's stray
events are moved within ``STRAY_SECONDS``, well before).

Replicas share the outbox through a lease (``<counter>.lease``): one relay at a time claims,
renewing the lease on every pass; another takes over when it lapses (``lease_seconds``).
docs/operations.md, "Outbox order", says what this keeps and what it does not.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ler.outbox import OutgoingMessage, pack_headers

log = logging.getLogger(__name__)

DUPLICATE_KEY = 11000
#: Events left in a share document longer than this are moved to the outbox by the relay.
STRAY_SECONDS = 30.0
#: How long a missing id holds back the ids after it.
GAP_SECONDS = 2 * STRAY_SECONDS
#: How long a relay's lease lasts without a pass renewing it.
LEASE_SECONDS = 30.0


def is_duplicate_key(exc: BaseException) -> bool:
    return getattr(exc, "code", None) == DUPLICATE_KEY


@dataclass(frozen=True, slots=True)
class _Pending:
    id: Any
    topic: str
    key: bytes | None
    value: bytes
    headers: bytes


def message_fields(message: OutgoingMessage) -> dict[str, Any]:
    return {
        "topic": message.topic,
        "key": message.key,
        "value": message.value,
        "headers": pack_headers(message.headers),
    }


class MongoOutbox:
    """An outbox as a MongoDB collection (ids from one counter, published in their order)."""

    def __init__(
        self, collection: Any, counters: Any, name: str = "wallet_outbox", counter: str = "outbox"
    ) -> None:
        self.collection = collection
        self.counters = counters
        self.name = name
        self.counter = counter
        self.gap_seconds = GAP_SECONDS
        self.lease_seconds = LEASE_SECONDS
        self.holder = uuid.uuid4().hex
        self._gap: tuple[int, float] | None = None  # the first missing id, seen since

    async def pending(self) -> int:
        through = await self._through()
        count: int = await self.collection.count_documents(
            {"_id": {"$gt": through}, "void": {"$ne": True}}
        )
        return count

    @contextlib.asynccontextmanager
    async def claim(self, limit: int) -> AsyncIterator[Sequence[Any]]:
        if not await self._lease():
            yield []
            return
        through = await self._through()
        # A message inserted again after it was published (a stray event moved twice) is done.
        await self.collection.delete_many({"_id": {"$lte": through}})
        query = {"_id": {"$gt": through}}
        docs = [d async for d in self.collection.find(query).sort("_id", 1).limit(limit)]
        run = self._run(through, docs)
        yield [
            _Pending(d["_id"], d["topic"], d.get("key"), d["value"], d["headers"])
            for d in run
            if not d.get("void")
        ]
        if run:
            last = run[-1]["_id"]
            await self.counters.update_one(
                {"_id": f"{self.counter}.relayed"}, {"$max": {"through": last}}, upsert=True
            )
            await self.collection.delete_many({"_id": {"$lte": last}})

    def _run(self, through: int, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The documents whose ids follow ``through`` without a gap."""
        run: list[dict[str, Any]] = []
        expected = through + 1
        for doc in docs:
            if doc["_id"] != expected:
                break
            run.append(doc)
            expected += 1
        if run or not docs:
            self._gap = None
            return run
        now = time.monotonic()
        if self._gap is None or self._gap[0] != expected:
            self._gap = (expected, now)
            return []
        if now - self._gap[1] < self.gap_seconds:
            return []
        log.warning(
            "outbox %s: ids %d..%d were reserved and not written for %.0f s; publishing past them",
            self.name,
            expected,
            docs[0]["_id"] - 1,
            now - self._gap[1],
        )
        self._gap = None
        return self._run(docs[0]["_id"] - 1, docs)

    async def _through(self) -> int:
        """The last id published (-1: none yet)."""
        mark = await self.counters.find_one({"_id": f"{self.counter}.relayed"})
        return int(mark["through"]) if mark else -1

    async def _lease(self) -> bool:
        """Take or renew this relay's lease; False while another relay holds it."""
        now = time.time()
        try:
            await self.counters.update_one(
                {
                    "_id": f"{self.counter}.lease",
                    "$or": [{"holder": self.holder}, {"until": {"$lt": now}}],
                },
                {"$set": {"holder": self.holder, "until": now + self.lease_seconds}},
                upsert=True,
            )
        except Exception as exc:
            if not is_duplicate_key(exc):
                raise
            return False  # held by another relay, and not lapsed
        return True

    async def next_ids(self, count: int) -> int:
        """Reserve ``count`` ids; returns the first. Each must then be inserted or voided."""
        counter = await self.counters.find_one_and_update(
            {"_id": self.counter}, {"$inc": {"next": count}}, upsert=True, return_document=True
        )
        return int(counter["next"]) - count

    async def add(self, messages: list[OutgoingMessage]) -> None:
        if not messages:
            return
        first = await self.next_ids(len(messages))
        try:
            await self.collection.insert_many(
                [{"_id": first + i, **message_fields(m)} for i, m in enumerate(messages)]
            )
        except Exception:
            with contextlib.suppress(Exception):
                await self.void(range(first, first + len(messages)))
            raise

    async def add_once(self, documents: Iterable[dict[str, Any]]) -> None:
        """Insert messages that carry their reserved ``_id``; one already there is left alone."""
        for document in documents:
            try:
                await self.collection.insert_one(document)
            except Exception as exc:
                if not is_duplicate_key(exc):
                    raise

    async def void(self, ids: Iterable[int]) -> None:
        """Give up reserved ids whose messages will never be written (the write failed)."""
        await self.add_once({"_id": i, "void": True} for i in ids)

    async def initial_mark(self) -> None:
        """Start the relayed mark of a store made before it existed: just before the oldest
        waiting message (or the next id to be reserved). Safe to run twice."""
        oldest = [d async for d in self.collection.find({}, {"_id": 1}).sort("_id", 1).limit(1)]
        counter = await self.counters.find_one({"_id": self.counter})
        start = oldest[0]["_id"] if oldest else int(counter["next"]) if counter else 0
        try:
            await self.counters.insert_one({"_id": f"{self.counter}.relayed", "through": start - 1})
        except Exception as exc:
            if not is_duplicate_key(exc):
                raise
