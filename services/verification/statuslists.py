"""Status list indices: handed out at random, each at most once, without races between
issuers (replicas of the verifier) writing to one database.

A credential's index is never given to another credential: entries are never deleted, the
``(list_id, status_index)`` primary key refuses a second holder, and a revoked credential keeps
its bit for good (a reinstatement issues a new credential with a new index; see
docs/credentials.md).

Lists have a purpose, ``revocation`` or ``suspension`` (``verification_status_list_purposes``; a
list without a row there is a revocation list, as every list was before suspension existed).
Ids are shared by both purposes, so ``GET /v1/status-lists/{list_id}`` names one list of either.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, MetaData, String, Table, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from ler.sql import Database

# A list is left for a new one once half of it is used, so random picks stay cheap and the
# index tells little about the order of issuance.
OPEN_ATTEMPTS = 20
REVOCATION = "revocation"
SUSPENSION = "suspension"
PURPOSES = (REVOCATION, SUSPENSION)


def purposes_table(metadata: MetaData) -> Table:
    """The purpose of each status list opened since suspension lists exist (a new table rather
    than a column, so databases made before it keep working: there are no migrations yet)."""
    return Table(
        "verification_status_list_purposes",
        metadata,
        Column("list_id", String(20), primary_key=True),
        Column("purpose", String(20), nullable=False),
    )


def purpose_of(purposes: Table) -> Any:
    """The purpose column of an outer join with ``purposes``: absent means revocation."""
    return func.coalesce(purposes.c.purpose, REVOCATION)


async def allocate_indices(
    db: Database,
    lists: Table,
    entries: Table,
    conn: AsyncConnection,
    credential_ids: list[str],
    size: int,
    purposes: Table,
    purpose: str = REVOCATION,
    *,
    now: datetime | None = None,
) -> list[tuple[str, int]]:
    """Random free indices of the current list for ``credential_ids``, in one transaction.

    The current list's row is locked (``FOR UPDATE`` on PostgreSQL; SQLite's writers queue), so
    two issuers never check the same list at once. A new list is inserted with ``ON CONFLICT
    DO NOTHING`` and then read back locked: when two issuers open one at the same moment, one
    inserts it and the other waits for that row and uses it, instead of failing on its id.
    A list opened here is created ``now`` (the issuance's time; default the clock).
    """
    moment = now or datetime.now(UTC)
    list_id, list_size = await _current_list(db, lists, purposes, purpose, conn, size, moment)
    chosen: set[int] = set()
    while len(chosen) < len(credential_ids):
        wanted = len(credential_ids) - len(chosen)
        candidates = {secrets.randbelow(list_size) for _ in range(wanted)} - chosen
        taken = set(
            (
                await conn.execute(
                    select(entries.c.status_index).where(
                        entries.c.list_id == list_id, entries.c.status_index.in_(candidates)
                    )
                )
            ).scalars()
        )
        chosen |= candidates - taken
    indices = list(chosen)
    await conn.execute(
        entries.insert(),
        [
            {"list_id": list_id, "status_index": index, "credential_id": credential_id}
            for index, credential_id in zip(indices, credential_ids, strict=True)
        ],
    )
    await conn.execute(
        lists.update().where(lists.c.list_id == list_id).values(used=lists.c.used + len(indices))
    )
    return [(list_id, index) for index in indices]


async def _current_list(
    db: Database,
    lists: Table,
    purposes: Table,
    purpose: str,
    conn: AsyncConnection,
    size: int,
    now: datetime,
) -> tuple[str, int]:
    query = (
        select(lists.c.list_id, lists.c.size)
        .select_from(lists.outerjoin(purposes, purposes.c.list_id == lists.c.list_id))
        .where(lists.c.used * 2 < lists.c.size, purpose_of(purposes) == purpose)
        .order_by(lists.c.created_at, lists.c.list_id)
        .limit(1)
    )
    if db.is_postgres:
        query = query.with_for_update(of=lists)
    for _ in range(OPEN_ATTEMPTS):
        current = (await conn.execute(query)).first()
        if current is not None:
            return str(current.list_id), int(current.size)
        # Ids count up from 1; a list is never deleted, so the next id is the count + 1. A
        # concurrent issuer may insert that id first: then ours does nothing, and the next
        # round finds (and waits for) theirs.
        # The purpose row goes in with the list, in the same transaction: when theirs won the
        # id, their purpose row is there too and ours does nothing either.
        count = int(await conn.scalar(select(func.count()).select_from(lists)) or 0)
        list_id = str(count + 1)
        await conn.execute(
            db.insert_ignore(lists).values(list_id=list_id, size=size, used=0, created_at=now)
        )
        await conn.execute(db.insert_ignore(purposes).values(list_id=list_id, purpose=purpose))
    raise RuntimeError(f"no status list could be opened after {OPEN_ATTEMPTS} attempts")
