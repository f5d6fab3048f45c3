"""Shared fixtures: the real embedded broker, real SQLite and PostgreSQL stores."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from ler.broker import EmbeddedBroker
from ler.kafka import create_topics
from ler.settings import KafkaSettings, PlatformSettings

PG_ADMIN_DSN = os.environ.get(
    "LER_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REQUIRE_PG = os.environ.get("LER_REQUIRE_POSTGRES") == "1"


@pytest.fixture(scope="session")
def broker() -> Iterator[EmbeddedBroker]:
    """The embedded Tansu broker on a free port, topics created, stopped by pid at the end."""
    with EmbeddedBroker() as running:
        asyncio.run(
            create_topics(
                KafkaSettings(bootstrap_servers=running.bootstrap_servers), PlatformSettings()
            )
        )
        yield running


@pytest.fixture(scope="session")
def kafka(broker: EmbeddedBroker) -> KafkaSettings:
    return KafkaSettings(bootstrap_servers=broker.bootstrap_servers)


@pytest.fixture(scope="session")
def platform(tmp_path_factory: pytest.TempPathFactory) -> PlatformSettings:
    return PlatformSettings(
        data_dir=tmp_path_factory.mktemp("var"), admin_token="test-admin-token-" + "x" * 20
    )


async def _postgres_available() -> str | None:
    import asyncpg

    try:
        conn = await asyncio.wait_for(asyncpg.connect(PG_ADMIN_DSN), 5)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    await conn.close()
    return None


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The PostgreSQL admin DSN; skips (or fails under LER_REQUIRE_POSTGRES=1) when unreachable."""
    problem = run_sync(_postgres_available())
    if problem is not None:
        message = f"PostgreSQL is not reachable at {PG_ADMIN_DSN}: {problem}"
        if REQUIRE_PG:
            pytest.fail(message)
        pytest.skip(message)
    return PG_ADMIN_DSN


async def _create_database(admin_dsn: str, name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def _drop_database(admin_dsn: str, name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def run_sync(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine to completion from sync or async code (in its own thread and loop)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


class Databases:
    """Hands out empty databases of one backend."""

    def __init__(self, backend: str, tmp: Path, admin_dsn: str | None) -> None:
        self.backend = backend
        self.tmp = tmp
        self.admin_dsn = admin_dsn
        self.created: list[str] = []

    def new_url(self) -> str:
        name = f"ler_test_{uuid.uuid4().hex[:12]}"
        if self.backend == "sqlite":
            return f"sqlite+aiosqlite:///{self.tmp / (name + '.db')}"
        assert self.admin_dsn is not None
        run_sync(_create_database(self.admin_dsn, name))
        self.created.append(name)
        base = self.admin_dsn.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
        return f"{base}/{name}"

    def cleanup(self) -> None:
        for name in self.created:
            assert self.admin_dsn is not None
            run_sync(_drop_database(self.admin_dsn, name))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def databases(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Databases]:
    """Empty databases on SQLite, then on PostgreSQL: the same test runs on both backends."""
    admin = request.getfixturevalue("postgres_server") if request.param == "postgres" else None
    dbs = Databases(request.param, tmp_path, admin)
    yield dbs
    dbs.cleanup()


@pytest.fixture
def database_url(databases: Databases) -> str:
    return databases.new_url()
