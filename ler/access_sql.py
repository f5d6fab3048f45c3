"""Applying :class:`ler.access.AccessChanged` to a service's SQL tables of persons and
organizations, in event order, inside the processor's transaction."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Column, Table
from sqlalchemy.ext.asyncio import AsyncConnection

from ler.access import AccessChanged


async def apply_access_changes(
    conn: AsyncConnection,
    changes: Sequence[object],
    *,
    persons: tuple[Table, str] | None = None,
    organizations: tuple[Table, str] | None = None,
) -> None:
    """Set the stored hash of each changed credential (``(table, hash column)`` per kind; the
    table's first primary-key column names the person or organization). Later changes of the
    same subject win, as on the topic."""
    targets = {"person": persons, "organization": organizations}
    for change in changes:
        if not isinstance(change, AccessChanged):
            continue
        target = targets[change.kind]
        if target is None:
            continue
        table, column = target
        key: Column[str] = next(iter(table.primary_key.columns))
        await conn.execute(
            table.update().where(key == change.subject_id).values({column: change.sha256})
        )
