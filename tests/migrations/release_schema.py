"""Write the DDL of a released tree's stores, one file per dialect, for the upgrade test.

    git archive e18da97 | tar -x -C /tmp/e18
    PYTHONPATH=/tmp/e18:tests/migrations .venv/bin/python tests/migrations/release_schema.py \
        e18da97 tests/migrations

The tables come from that tree's own code (``service_tables.py`` run against it), compiled for
SQLite and PostgreSQL exactly as its ``create_all`` would have issued them.
"""

from __future__ import annotations

import importlib
import sys
import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.schema import CreateIndex, CreateTable


def ddl(dialect_name: str) -> str:
    # Found on sys.path beside this file, so that the released tree's ``services`` come first.
    tables: Any = importlib.import_module("service_tables")
    dialect: Any = (
        postgresql.dialect()  # type: ignore[no-untyped-call]
        if dialect_name == "postgresql"
        else sqlite.dialect()
    )
    out: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        for service in tables.SERVICES:
            out.append(f"-- {service}")
            for table in tables.service_metadata(
                service, f"sqlite+aiosqlite:///{tmp}/x.db"
            ).sorted_tables:
                out.append(str(CreateTable(table).compile(dialect=dialect)).strip() + ";")
                for index in sorted(table.indexes, key=lambda i: str(i.name)):
                    out.append(str(CreateIndex(index).compile(dialect=dialect)).strip() + ";")
    return "\n\n".join(out) + "\n"


def main() -> None:
    release, target = sys.argv[1], Path(sys.argv[2])
    for dialect_name in ("sqlite", "postgresql"):
        path = target / f"release_{release}.{dialect_name}.sql"
        path.write_text(
            f"-- the stores of release {release} ({dialect_name})\n\n" + ddl(dialect_name)
        )
        print(path)


if __name__ == "__main__":
    main()
