"""The SLA processor's state in SQL: open and closed items, each input partition's event time."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    select,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from ler.avro import AvroCodec
from ler.envelope import event, new_envelope
from ler.outbox import OutgoingMessage, enqueue
from ler.sql import Database
from ler.sqlstore import SqlProcessorStore
from ler.topics import SLA
from services.verification.migrations import HISTORY
from services.verification.sla import (
    Budgets,
    ItemClosed,
    ItemMarked,
    ItemOpened,
    ItemRow,
    PartitionTime,
    SlaChange,
)

PREFIX = "sla"
PRODUCER = "verification.sla"


class SlaStore(SqlProcessorStore[SlaChange]):
    """Items with their deadlines; warnings, breaches and met deadlines go out through the outbox."""

    def __init__(self, url: str, codec: AvroCodec, budgets: Budgets) -> None:
        metadata = MetaData()
        super().__init__(Database(url, metadata, migrations=HISTORY), PREFIX)
        self.codec = codec
        self.budgets = budgets
        self.items = Table(
            "sla_items",
            metadata,
            Column("item_id", String(80), primary_key=True),
            Column("queue", String(30), nullable=False),
            Column("person_id", String(36), nullable=False),
            Column("record_id", String(36), nullable=False),
            Column("organization_id", String(36), nullable=True),
            Column("partition", Integer, nullable=False),
            Column("submitted_at", DateTime(timezone=True), nullable=False),
            Column("warn_at", DateTime(timezone=True), nullable=False),
            Column("deadline", DateTime(timezone=True), nullable=False),
            Column("warned_at", DateTime(timezone=True), nullable=True),
            Column("breached_at", DateTime(timezone=True), nullable=True),
            Column("closed_at", DateTime(timezone=True), nullable=True),
            Column("elapsed_seconds", Float, nullable=True),
            Column("within_deadline", Boolean, nullable=True),
            Index("sla_items_open_warn", "closed_at", "warn_at"),
            Index("sla_items_closed", "queue", "closed_at"),
        )
        self.partition_times = Table(
            "sla_partition_times",
            metadata,
            Column("topic", String(249), primary_key=True),
            Column("partition", Integer, primary_key=True, autoincrement=False),
            Column("event_time", DateTime(timezone=True), nullable=False),
        )
        self._opened = False

    async def open(self) -> None:
        if not self._opened:
            await super().open()
            self._opened = True

    async def apply(self, conn: AsyncConnection, changes: list[SlaChange]) -> None:
        out: list[OutgoingMessage] = []
        times: dict[tuple[str, int], datetime] = {}
        partition = 0
        for change in changes:
            if isinstance(change, PartitionTime):
                tp = (change.topic, change.partition)
                times[tp] = max(times.get(tp, change.event_time), change.event_time)
                partition = change.partition
            elif isinstance(change, ItemOpened):
                await conn.execute(
                    self.db.insert_ignore(self.items), self._row(change.item, partition)
                )
            elif isinstance(change, ItemClosed):
                await self._close(conn, change, partition, out)
        for (topic, part), at in times.items():
            t = self.partition_times
            stored = await conn.scalar(
                select(t.c.event_time).where(t.c.topic == topic, t.c.partition == part)
            )
            if stored is None:
                await conn.execute(t.insert().values(topic=topic, partition=part, event_time=at))
            elif _utc(stored) < at:
                await conn.execute(
                    t.update()
                    .where(t.c.topic == topic, t.c.partition == part)
                    .values(event_time=at)
                )
        await enqueue(conn, self.outbox, out)

    def _row(self, item: Any, partition: int) -> dict[str, Any]:
        return {
            "item_id": item.item_id,
            "queue": item.queue,
            "person_id": item.person_id,
            "record_id": item.record_id,
            "organization_id": item.organization_id,
            "partition": partition,
            "submitted_at": item.submitted_at,
            "warn_at": self.budgets.warn_at(item.queue, item.submitted_at),
            "deadline": self.budgets.deadline(item.queue, item.submitted_at),
        }

    async def _close(
        self, conn: AsyncConnection, change: ItemClosed, partition: int, out: list[OutgoingMessage]
    ) -> None:
        # A close may arrive before its open (two outboxes, two topics): the close carries
        # submitted_at, so it creates the item if needed; the later open is then ignored.
        await conn.execute(self.db.insert_ignore(self.items), self._row(change.item, partition))
        i = self.items
        row = (await conn.execute(select(i).where(i.c.item_id == change.item.item_id))).first()
        if row is None or row.closed_at is not None:
            return
        submitted_at = _utc(row.submitted_at)
        deadline = _utc(row.deadline)
        elapsed = max(0.0, (change.closed_at - submitted_at).total_seconds())
        within = change.closed_at <= deadline
        updated = await conn.execute(
            i.update()
            .where(i.c.item_id == row.item_id, i.c.closed_at.is_(None))
            .values(closed_at=change.closed_at, elapsed_seconds=elapsed, within_deadline=within)
        )
        if updated.rowcount == 1:
            out.append(
                self._sla_event(
                    "SlaMet",
                    row,
                    elapsed,
                    decided_at=change.closed_at,
                    within_deadline=within,
                )
            )

    def _sla_event(
        self,
        event_type: str,
        row: Any,
        elapsed: float,
        at: datetime | None = None,
        **extra: Any,
    ) -> OutgoingMessage:
        record = event(
            new_envelope(event_type, PRODUCER, occurred_at=at),
            item_id=row.item_id,
            queue=row.queue,
            person_id=row.person_id,
            record_id=row.record_id,
            submitted_at=_utc(row.submitted_at),
            deadline=_utc(row.deadline),
            elapsed_seconds=elapsed,
            organization_id=row.organization_id,
            **extra,
        )
        return OutgoingMessage(SLA.name, row.person_id.encode(), self.codec.encode(record))

    async def mark(self, marks: list[ItemMarked]) -> int:
        """Replay: set each item's warning or breach time as ``ler.sla.v1`` recorded it."""
        i = self.items
        done = 0
        async with self.db.transaction() as conn:
            for m in marks:
                result = await conn.execute(
                    i.update()
                    .where(i.c.item_id == m.item_id, i.c[m.column].is_(None))
                    .values({m.column: m.at})
                )
                done += int(result.rowcount or 0)
        return done

    async def partition_clock(self) -> dict[tuple[str, int], datetime]:
        t = self.partition_times
        async with self.db.read() as conn:
            rows = (await conn.execute(select(t))).all()
        return {(r.topic, r.partition): _utc(r.event_time) for r in rows}

    async def emit_due(self, now: datetime, partitions: Iterable[int]) -> int:
        """Warn and breach the open items of these partitions whose time has come by ``now``
        (the event-time clock); each item is warned and breached at most once."""
        parts = sorted(set(partitions))
        if not parts:
            return 0
        i = self.items
        out: list[OutgoingMessage] = []
        async with self.db.transaction() as conn:
            # Lock the due rows in key order and skip those a batch commit holds (it may be
            # closing them): this transaction never waits on a row lock, so it cannot take part
            # in a deadlock; a skipped item is looked at again on the next tick.
            due = (
                await conn.execute(
                    select(i)
                    .where(
                        i.c.closed_at.is_(None),
                        i.c.breached_at.is_(None),
                        i.c.warn_at <= now,
                        i.c.partition.in_(parts),
                    )
                    .order_by(i.c.item_id)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            for row in due:
                elapsed = (now - _utc(row.submitted_at)).total_seconds()
                if row.warned_at is None:
                    done = await conn.execute(
                        i.update()
                        .where(i.c.item_id == row.item_id, i.c.warned_at.is_(None))
                        .values(warned_at=now)
                    )
                    if done.rowcount == 1:
                        out.append(self._sla_event("SlaWarning", row, elapsed, now))
                if _utc(row.deadline) <= now:
                    done = await conn.execute(
                        i.update()
                        .where(i.c.item_id == row.item_id, i.c.breached_at.is_(None))
                        .values(breached_at=now)
                    )
                    if done.rowcount == 1:
                        out.append(self._sla_event("SlaBreached", row, elapsed, now))
            await enqueue(conn, self.outbox, out)
        return len(out)

    async def item_rows(self, since: datetime) -> list[ItemRow]:
        """Open items, and items closed since ``since``."""
        i = self.items
        async with self.db.read() as conn:
            rows = (
                await conn.execute(
                    select(
                        i.c.queue,
                        i.c.submitted_at,
                        i.c.deadline,
                        i.c.closed_at,
                        i.c.elapsed_seconds,
                        i.c.breached_at,
                    ).where(
                        i.c.closed_at.is_(None)
                        | (i.c.closed_at >= since)
                        | (i.c.breached_at >= since)
                    )
                )
            ).all()
        return [
            ItemRow(
                queue=r.queue,
                submitted_at=_utc(r.submitted_at),
                deadline=_utc(r.deadline),
                closed_at=_utc(r.closed_at) if r.closed_at else None,
                elapsed_seconds=r.elapsed_seconds,
                breached_at=_utc(r.breached_at) if r.breached_at else None,
            )
            for r in rows
        ]


def _utc(value: datetime) -> datetime:
    """SQLite gives naive datetimes back: they were written in UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
