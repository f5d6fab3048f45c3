"""``ler migrate [service|--all] [--database-url URL]``: apply each service database's migrations.

Services are found by module path (``services.<name>.migrations:migrate``), as the rest of the CLI
finds them; the kit never imports a service statically.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
from typing import Any

from ler.migrations import StoreBehind

SERVICES = ("enrollment", "verification", "wallet", "notifications")


def _migrate_fn(service: str) -> Any:
    return importlib.import_module(f"services.{service}.migrations").migrate


def cmd_migrate(args: argparse.Namespace) -> int:
    if args.all == bool(args.service):
        print("ler migrate: name one service or --all", file=sys.stderr)
        return 2
    services = SERVICES if args.all else (args.service,)
    for service in services:
        try:
            applied: list[str] = asyncio.run(_migrate_fn(service)(args.database_url))
        except StoreBehind as exc:
            print(f"ler migrate: {exc}", file=sys.stderr)
            return 1
        done = ", ".join(applied) if applied else "nothing to apply (up to date)"
        print(f"{service}: {done}")
    return 0


def add_parser(sub: Any) -> None:
    migrate = sub.add_parser(
        "migrate", help="apply the stores' schema migrations (Alembic; MongoDB's for the wallet)"
    )
    migrate.add_argument("service", nargs="?", choices=SERVICES)
    migrate.add_argument("--all", action="store_true", help="every service's database")
    migrate.add_argument(
        "--database-url", help="the database to migrate (default: each service's own)"
    )
    migrate.set_defaults(func=cmd_migrate)
