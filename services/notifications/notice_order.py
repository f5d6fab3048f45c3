"""The order gate of people's notices: a record's transitions leave the verification service
through two outboxes (its API's and its verifier's), so they may be read out of order. A notice
about a record whose ``record_version`` is not above the highest already noticed for it announces
a state that no longer holds: it is kept as ``superseded`` and never sent (docs/notifications.md,
"Order").
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import BigInteger, Column, MetaData, String, Table, select
from sqlalchemy.ext.asyncio import AsyncConnection

from ler.sql import Database
from services.notifications.domain import Notice

SUPERSEDED = "superseded"


def notice_versions_table(metadata: MetaData) -> Table:
    return Table(
        "notifications_notice_versions",
        metadata,
        Column("record_id", String(36), primary_key=True),
        Column("record_version", BigInteger, nullable=False),
    )


async def stale_notices(
    conn: AsyncConnection, db: Database, table: Table, notices: Sequence[Notice]
) -> set[str]:
    """The message ids of notices older than one already given (in read order, in this batch
    or before); the highest version per record is remembered."""
    versioned = [n for n in notices if n.record_version is not None and n.context.get("record_id")]
    if not versioned:
        return set()
    ids = sorted({str(n.context["record_id"]) for n in versioned})
    held = {
        r.record_id: int(r.record_version)
        for r in await conn.execute(select(table).where(table.c.record_id.in_(ids)))
    }
    before = dict(held)
    stale: set[str] = set()
    for notice in versioned:
        record_id, version = str(notice.context["record_id"]), int(notice.record_version or 0)
        if record_id in held and version <= held[record_id]:
            # Not above what was noticed: stale, unless it is a redelivery of the notice itself
            # (same message id), whose state the insert-ignore keeps as it was.
            stale.add(notice.message_id)
            continue
        held[record_id] = version
    changed = [{"record_id": k, "record_version": v} for k, v in held.items() if before.get(k) != v]
    if changed:
        await conn.execute(db.upsert(table, ["record_id"], ["record_version"]), changed)
    return stale
