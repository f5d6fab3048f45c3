"""The log of reads by staff: who was shown which record, when (issue 11: staff reads are audited
like reads of a wallet). The record's owner sees them in the record's audit (``reads``)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import BigInteger, Column, DateTime, Index, Integer, MetaData, String, Table, select

if TYPE_CHECKING:
    from services.verification.store import Caller, VerificationStore


def reads_table(metadata: MetaData) -> Table:
    return Table(
        "verification_reads",
        metadata,
        Column(
            "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
        ),
        Column("record_id", String(36), nullable=False),
        Column("actor", String(80), nullable=False),
        Column("what", String(40), nullable=False),
        Column("at", DateTime(timezone=True), nullable=False),
        Index("verification_reads_record", "record_id", "id"),
    )


def is_staff(caller: Caller) -> bool:
    return caller.is_admin or caller.actor.startswith("reviewer:")


async def audit_reads(
    store: VerificationStore, caller: Caller, record_ids: Iterable[str], what: str
) -> None:
    """One read entry per record a staff member was shown (a person's own reads are not)."""
    rows = [
        {"record_id": r, "actor": caller.actor, "what": what, "at": datetime.now(UTC)}
        for r in dict.fromkeys(record_ids)
    ]
    if not rows or not is_staff(caller):
        return
    async with store.db.transaction() as conn:
        await conn.execute(store.reads.insert(), rows)


async def reads_of(store: VerificationStore, record_id: str) -> list[dict[str, Any]]:
    t = store.reads
    async with store.db.read() as conn:
        rows = await conn.execute(
            select(t.c.actor, t.c.what, t.c.at).where(t.c.record_id == record_id).order_by(t.c.id)
        )
        return [{"actor": r.actor, "what": r.what, "at": r.at.isoformat()} for r in rows]
