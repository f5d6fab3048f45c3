"""What a replay is compared on: the projection's tables, row by row, without the columns that
record side effects (sending, leases) rather than what the events mean."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Table, select

from ler.sql import Database

Dump = dict[str, list[tuple[Any, ...]]]


async def dump_tables(
    db: Database,
    tables: Iterable[Table],
    *,
    exclude: Mapping[str, Iterable[str]] | None = None,
    where: Mapping[str, ColumnElement[bool]] | None = None,
) -> Dump:
    """Every row of each table (sorted, its columns in table order), leaving out ``exclude``'s
    columns of a table and the rows ``where`` of a table does not select."""
    out: Dump = {}
    async with db.read() as conn:
        for table in tables:
            left_out = set((exclude or {}).get(table.name, ()))
            columns = [c for c in table.columns if c.name not in left_out]
            query = select(*columns)
            if where and table.name in where:
                query = query.where(where[table.name])
            rows = (await conn.execute(query)).all()
            out[table.name] = sorted((tuple(_plain(v) for v in r) for r in rows), key=repr)
    return out


def _plain(value: Any) -> Any:
    """SQLite hands back naive datetimes (stored in UTC), PostgreSQL aware ones: compare alike."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value
