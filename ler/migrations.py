"""Versioned schema migrations of the SQL stores (Alembic), one history per service database.

Each service keeps its history under ``services/<name>/migrations/versions/`` and records where
its database stands in its own version table (``alembic_version_<name>``), so services that share
one ``DATABASE_URL`` keep separate histories. A store made before migrations existed (by
``create_all``) holds the service's tables and no version row: it is adopted at the history's
first revision, the schema of the last release (docs/operations.md, "Migrations").

``ler migrate`` applies the revisions; a store opened in the embedded or development mode is
brought up to date at open, while ``LER_ENV=production`` refuses a store that is behind (or ahead)
and names the command.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from alembic import op
from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, make_url

if TYPE_CHECKING:
    from ler.sql import Database

log = logging.getLogger(__name__)


class StoreBehind(RuntimeError):
    """The store's schema is not the one this release runs on, and may not be migrated here."""


@dataclass(frozen=True)
class History:
    """The migration history of one service's database."""

    service: str
    directory: Path  # holds ``versions/``
    prefixes: tuple[str, ...]  # the service's table names start with one of these

    @property
    def version_table(self) -> str:
        return f"alembic_version_{self.service}"

    @property
    def command(self) -> str:
        return f"ler migrate {self.service}"

    def config(self) -> Config:
        config = Config()
        config.set_main_option("script_location", str(self.directory))
        return config

    def script(self) -> ScriptDirectory:
        return ScriptDirectory.from_config(self.config())

    def head(self) -> str:
        head = self.script().get_current_head()
        assert head is not None, f"{self.service}: the migration history is empty"
        return head

    def base(self) -> str:
        bases = self.script().get_bases()
        assert len(bases) == 1, f"{self.service}: one first revision expected, got {bases}"
        return bases[0]


@dataclass(frozen=True)
class Status:
    current: str | None  # None: an empty store, or one made before migrations (see ``adopt``)
    head: str
    unversioned_tables: bool  # the service's tables exist but no version row does

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head


def _lock_key(history: History) -> int:
    return zlib.crc32(f"ler-migrate:{history.service}".encode())


def _status(conn: Connection, history: History) -> Status:
    context = MigrationContext.configure(conn, opts={"version_table": history.version_table})
    heads = context.get_current_heads()
    if len(heads) > 1:
        raise StoreBehind(f"{history.service}: the store has several heads {heads}")
    current = heads[0] if heads else None
    unversioned = False
    if current is None:
        names = sa.inspect(conn).get_table_names()
        unversioned = any(n.startswith(history.prefixes) for n in names)
    return Status(current, history.head(), unversioned)


def _upgrade(conn: Connection, history: History) -> list[str]:
    """Apply every revision from the store's to the head inside the caller's transaction."""
    status = _status(conn, history)
    script = history.script()
    applied: list[str] = []
    if status.current is not None and status.current not in {r.revision for r in _walk(script)}:
        raise StoreBehind(
            f"{history.service}: the store is at revision {status.current}, which this release "
            "does not know (made by a newer release?)"
        )

    def upgrade_from(rev: Any, _context: Any) -> Any:
        steps = script._upgrade_revs(status.head, rev)
        applied.extend(str(step.revision.revision) for step in steps)
        return steps

    config = history.config()
    with EnvironmentContext(config, script, fn=upgrade_from, destination_rev=status.head) as env:
        env.configure(
            connection=conn,
            version_table=history.version_table,
            transaction_per_migration=False,
            render_as_batch=True,
        )
        if status.unversioned_tables:
            # A store made by ``create_all`` of the last release: its tables are the first
            # revision's; record that, then upgrade from there.
            env.get_context().stamp(script, history.base())
        with env.begin_transaction():
            env.run_migrations()
    return applied


def _walk(script: ScriptDirectory) -> Iterable[Any]:
    return script.walk_revisions()


async def status(db: Database, history: History) -> Status:
    async with db.read() as conn:
        return await conn.run_sync(lambda sync: _status(sync, history))


async def upgrade(db: Database, history: History) -> list[str]:
    """Bring the store to the head revision; returns the revisions applied (none when current).

    One migrator at a time: PostgreSQL takes an advisory lock in the transaction, SQLite's
    ``BEGIN IMMEDIATE`` (``Database.transaction``) already excludes every other writer.
    """
    # Alembic's INFO lines (one per revision and context) would fill every service's start-up log;
    # ``ler migrate`` prints what it applied, an open that migrated logs it once.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    async with db.transaction() as conn:
        if db.is_postgres:
            await conn.execute(
                sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _lock_key(history)}
            )
        return await conn.run_sync(lambda sync: _upgrade(sync, history))


async def ensure(db: Database, history: History, *, migrate: bool) -> None:
    """At open: migrate (embedded, development) or refuse a store that is not at the head."""
    if migrate:
        applied = await upgrade(db, history)
        if applied:
            log.info("migrated the %s store: %s", history.service, ", ".join(applied))
        return
    found = await status(db, history)
    if found.up_to_date:
        return
    where = make_url(db.url).render_as_string(hide_password=True)
    if found.current is None and not found.unversioned_tables:
        state = "is empty"
    elif found.current is None:
        state = "was made before versioned migrations"
    else:
        state = f"is at revision {found.current}"
    raise StoreBehind(
        f"the {history.service} store ({where}) {state}; this release needs revision "
        f"{found.head}: run `{history.command}` (production never migrates at start-up)"
    )


# ----------------------------------------------------------------- helpers for revisions


def has_table(name: str) -> bool:
    return bool(sa.inspect(op.get_bind()).has_table(name))


def create_table_once(
    name: str, *items: Any, indexes: Iterable[tuple[str, list[str]]] = ()
) -> None:
    """Create a table unless a store made between releases (``create_all``) already has it."""
    if has_table(name):
        return
    op.create_table(name, *items)
    for index_name, columns in indexes:
        op.create_index(index_name, name, columns, unique=False)


def create_index_once(name: str, table: str, columns: list[str]) -> None:
    if name not in {i["name"] for i in sa.inspect(op.get_bind()).get_indexes(table)}:
        op.create_index(name, table, columns, unique=False)


def add_column_once(table: str, column: sa.Column[Any]) -> None:
    names = {c["name"] for c in sa.inspect(op.get_bind()).get_columns(table)}
    if column.name not in names:
        op.add_column(table, column)


def unique_constraints(table: str) -> list[Any]:
    return list(sa.inspect(op.get_bind()).get_unique_constraints(table))


def dialect() -> str:
    return str(op.get_bind().dialect.name)


async def upgrade_url(url: str, history: History) -> list[str]:
    """``ler migrate``: bring the database at ``url`` to the head of ``history``."""
    from ler.sql import Database

    db = Database(url, sa.MetaData())
    try:
        return await upgrade(db, history)
    finally:
        await db.close()
