"""The SQL adapter of the processor store port: positions and outbox beside the derived state."""

from __future__ import annotations

from abc import abstractmethod
from typing import TypeVar

from sqlalchemy import BigInteger, Column, Integer, String, Table, bindparam, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from ler.outbox import SqlOutbox, enqueue, outbox_table
from ler.processing import TP, Batch, ProcessorStore, StalePositions
from ler.sql import Database

C = TypeVar("C")


class SqlProcessorStore(ProcessorStore[C]):
    """Commits a batch's state, positions and outbox rows in one SQL transaction.

    Subclasses define their tables on ``db.metadata`` and implement :meth:`apply`.
    """

    def __init__(self, db: Database, prefix: str) -> None:
        self.db = db
        self.prefix = prefix
        self.positions_table = Table(
            f"{prefix}_positions",
            db.metadata,
            Column("topic", String(249), primary_key=True),
            Column("partition", Integer, primary_key=True, autoincrement=False),
            Column("offset", BigInteger, nullable=False),
            # CRC-32 of the message at ``offset`` (ler.processing.message_mark).
            Column("mark", BigInteger, nullable=True),
        )
        self.outbox = outbox_table(db.metadata, prefix)

    async def open(self) -> None:
        await self.db.create_tables()

    async def close(self) -> None:
        await self.db.close()

    async def discard_outbox(self) -> int:
        """Drop what the outbox holds: after a replay, the events its commits re-derived were
        published by the live processor already (a replay never publishes)."""
        async with self.db.transaction() as conn:
            result = await conn.execute(self.outbox.delete())
        return int(result.rowcount or 0)

    def outbox_source(self) -> SqlOutbox:
        return SqlOutbox(self.db, self.outbox)

    async def positions(self) -> dict[TP, int]:
        t = self.positions_table
        async with self.db.read() as conn:
            rows = (await conn.execute(select(t.c.topic, t.c.partition, t.c.offset))).all()
        return {(r.topic, r.partition): r.offset for r in rows}

    async def position_marks(self) -> dict[TP, int]:
        t = self.positions_table
        async with self.db.read() as conn:
            rows = (
                await conn.execute(
                    select(t.c.topic, t.c.partition, t.c.mark).where(t.c.mark.is_not(None))
                )
            ).all()
        return {(r.topic, r.partition): r.mark for r in rows}

    async def commit(self, batch: Batch[C]) -> None:
        t = self.positions_table
        async with self.db.transaction() as conn:
            tps = list(batch.first_offsets)
            # Make sure a row exists for each partition, then lock them: a worker that lost the
            # partition in a rebalance waits here and then sees the new owner's position.
            await conn.execute(
                self.db.insert_ignore(t),
                [{"topic": topic, "partition": part, "offset": -1} for topic, part in tps],
            )
            query = select(t.c.topic, t.c.partition, t.c.offset).where(
                tuple_(t.c.topic, t.c.partition).in_(tps)
            )
            if self.db.is_postgres:
                query = query.with_for_update()
            stored = {(r.topic, r.partition): r.offset for r in await conn.execute(query)}
            for tp, first in batch.first_offsets.items():
                if stored.get(tp, -1) >= first:
                    raise StalePositions(f"{tp[0]}[{tp[1]}] is at {stored[tp]}, batch from {first}")
            if batch.changes:
                await self.apply(conn, batch.changes)
            # One statement for every partition of the batch (an executemany).
            if batch.positions:
                await conn.execute(
                    t.update()
                    .where(t.c.topic == bindparam("p_topic"), t.c.partition == bindparam("p_part"))
                    .values(offset=bindparam("p_offset"), mark=bindparam("p_mark")),
                    [
                        {
                            "p_topic": topic,
                            "p_part": part,
                            "p_offset": offset,
                            "p_mark": batch.marks.get((topic, part)),
                        }
                        for (topic, part), offset in batch.positions.items()
                    ],
                )
            await enqueue(conn, self.outbox, batch.outgoing)

    @abstractmethod
    async def apply(self, conn: AsyncConnection, changes: list[C]) -> None:
        """Write the changes of one batch inside the given transaction, idempotently."""
