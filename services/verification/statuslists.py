"""Status list indices: handed out at random, each at most once, without races between
issuers (replicas of the verifier) writing to one database.

A credential's index is never given to another credential: entries are never deleted, the
``(list_id, status_index)`` primary key refuses a second holder, and a revoked credential keeps
its bit for good (a reinstatement issues a new credential with a new index; see
docs/credentials.md).
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from sqlalchemy import Table, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from ler.sql import Database

# A list is left for a new one once half of it is used, so random picks stay cheap and the
# index tells little about the order of issuance.
OPEN_ATTEMPTS = 20


async def allocate_indices(
    db: Database,
    lists: Table,
    entries: Table,
    conn: AsyncConnection,
    credential_ids: list[str],
    size: int,
) -> list[tuple[str, int]]:
    """Random free indices of the current list for ``credential_ids``, in one transaction.

    The current list's row is locked (``FOR UPDATE`` on PostgreSQL; SQLite's writers queue), so
    two issuers never check the same list at once. A new list is inserted with ``ON CONFLICT
    DO NOTHING`` and then read back locked: when two issuers open one at the same moment, one
    inserts it and the other waits for that row and uses it, instead of failing on its id.
    """
    list_id, list_size = await _current_list(db, lists, conn, size)
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
    db: Database, lists: Table, conn: AsyncConnection, size: int
) -> tuple[str, int]:
    query = (
        select(lists.c.list_id, lists.c.size)
        .where(lists.c.used * 2 < lists.c.size)
        .order_by(lists.c.created_at, lists.c.list_id)
        .limit(1)
    )
    if db.is_postgres:
        query = query.with_for_update()
    for _ in range(OPEN_ATTEMPTS):
        current = (await conn.execute(query)).first()
        if current is not None:
            return str(current.list_id), int(current.size)
        # Ids count up from 1; a list is never deleted, so the next id is the count + 1. A
        # concurrent issuer may insert that id first: then ours does nothing, and the next
        # round finds (and waits for) theirs.
        count = int(await conn.scalar(select(func.count()).select_from(lists)) or 0)
        await conn.execute(
            db.insert_ignore(lists).values(
                list_id=str(count + 1), size=size, used=0, created_at=datetime.now(UTC)
            )
        )
    raise RuntimeError(f"no status list could be opened after {OPEN_ATTEMPTS} attempts")
