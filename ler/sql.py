"""The SQL store: SQLAlchemy 2 async Core on SQLite (embedded) and PostgreSQL (production, CI)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, Table, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from ler.migrations import History, ensure
from ler.settings import PlatformSettings, load
from ler.transient import is_transient

__all__ = ["Database", "is_transient"]

log = logging.getLogger(__name__)


class Database:
    """One async engine and the tables a service keeps in it."""

    def __init__(
        self,
        url: str,
        metadata: MetaData,
        *,
        pool_size: int = 5,
        migrations: History | None = None,
    ) -> None:
        self.url = url
        self.metadata = metadata
        #: The service database's migration history; without one, tables are made by create_all
        #: (stores of tests and tools that have no history).
        self.migrations = migrations
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        # This process's SQLite writers queue here, first come, first served (see transaction).
        self._writers = asyncio.Lock()
        # hide_parameters: a failed statement's error message (logged on error paths) would
        # otherwise carry its bound values: names, e-mails, birth dates (docs/security.md).
        if self.dialect == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            self.engine: AsyncEngine = create_async_engine(
                url, connect_args={"timeout": 30}, pool_size=pool_size, hide_parameters=True
            )
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        elif self.dialect == "postgresql":
            self.engine = create_async_engine(
                url, pool_size=pool_size, pool_pre_ping=True, hide_parameters=True
            )
        else:
            raise ValueError(f"database URL: unsupported backend {self.dialect!r}")

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    async def create_tables(self) -> None:
        """Bring the schema up to date at open; safe when several processes start at once.

        With a migration history: migrated to its head in the embedded and development modes,
        refused with :class:`ler.migrations.StoreBehind` (naming ``ler migrate``) in production.
        """
        for attempt in range(3):
            try:
                if self.migrations is not None:
                    production = load(PlatformSettings).env == "production"
                    await ensure(self, self.migrations, migrate=not production)
                    return
                async with self.transaction() as conn:
                    await conn.run_sync(self.metadata.create_all)
                return
            except DBAPIError:
                if attempt == 2:
                    raise

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """One database transaction: committed on success, rolled back on any error."""
        if self.dialect != "sqlite":
            async with self.engine.begin() as conn:
                yield conn
            return
        # SQLite has one writer at a time, and BEGIN IMMEDIATE waits for it in SQLite's busy
        # handler, which polls with sleeps of up to 100 ms: a writer that commits and begins again
        # at once (a processor's committer) kept the lock for seconds while a second writer of
        # its process (the outbox relay) polled. Writers of one process queue on a lock first;
        # between processes the busy handler still decides.
        async with self._writers, self.engine.begin() as conn:
            await conn.exec_driver_sql("BEGIN IMMEDIATE")
            yield conn

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as conn:
            yield conn

    def insert_ignore(self, table: Table) -> Any:
        """``INSERT ... ON CONFLICT DO NOTHING`` in this database's dialect."""
        dialect = postgresql if self.is_postgres else sqlite
        return dialect.insert(table).on_conflict_do_nothing()

    def upsert(self, table: Table, keys: list[str], update: list[str]) -> Any:
        """``INSERT ... ON CONFLICT (keys) DO UPDATE SET`` each column in ``update``."""
        dialect = postgresql if self.is_postgres else sqlite
        stmt = dialect.insert(table)
        return stmt.on_conflict_do_update(
            index_elements=keys, set_={name: stmt.excluded[name] for name in update}
        )

    async def close(self) -> None:
        await self.engine.dispose()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the API processes read while a processor writes; autocommit mode (isolation_level
    # None) hands transaction control to our explicit BEGIN IMMEDIATE.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
