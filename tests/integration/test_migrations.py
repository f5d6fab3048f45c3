"""Schema migrations on SQLite and PostgreSQL: a store made by release e18da97 (its DDL, generated
from that commit by tests/migrations/release_schema.py) with data in it is upgraded by
``ler migrate``, keeps its data, and the services work on it; production refuses a store that is
behind and names the command; the migrated schema is exactly what today's code defines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from ler.migrations import History, StoreBehind, status, upgrade
from ler.settings import PlatformSettings
from ler.sql import Database
from services.enrollment.migrations import HISTORY as ENROLLMENT
from services.notifications.migrations import HISTORY as NOTIFICATIONS
from services.verification.bootstrap import bootstrap as verification
from services.verification.migrations import HISTORY as VERIFICATION
from services.wallet.bootstrap import bootstrap as wallet
from services.wallet.migrations import HISTORY as WALLET
from tests.migrations.service_tables import service_metadata

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
HISTORIES = {h.service: h for h in (ENROLLMENT, VERIFICATION, WALLET, NOTIFICATIONS)}
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def release_ddl(dialect: str) -> list[str]:
    text = (ROOT / "tests" / "migrations" / f"release_e18da97.{dialect}.sql").read_text()
    statements = [s.strip() for s in text.split(";\n")]
    return [
        "\n".join(line for line in s.splitlines() if not line.startswith("--")).strip()
        for s in statements
        if s.strip()
    ]


async def make_release_store(url: str) -> Database:
    """Every service's tables as release e18da97 created them, in one database (a shared
    DATABASE_URL), and a little of everything in them."""
    db = Database(url, sa.MetaData())
    async with db.transaction() as conn:
        for statement in release_ddl("postgresql" if db.is_postgres else "sqlite"):
            if statement:
                await conn.exec_driver_sql(statement)
        await fill(conn)
    return db


PERSON, RECORD, CREDENTIAL, ORG = (str(uuid.uuid4()) for _ in range(4))


async def fill(conn: Any) -> None:
    def insert(table: str, **row: Any) -> Any:
        columns = ", ".join(f'"{k}"' for k in row)
        values = ", ".join(f":{k}" for k in row)
        return conn.execute(sa.text(f"INSERT INTO {table} ({columns}) VALUES ({values})"), row)

    await insert(
        "enrollment_organizations",
        organization_id=ORG,
        name="Sunny Days",
        kind="employer",
        api_key_sha256="a" * 64,
        created_at=NOW,
    )
    await insert("verification_status_lists", list_id="list-1", size=131072, used=1, created_at=NOW)
    await insert(
        "verification_status_entries", list_id="list-1", status_index=7, credential_id=CREDENTIAL
    )
    await insert(
        "verification_credentials",
        credential_id=CREDENTIAL,
        record_id=RECORD,
        person_id=PERSON,
        organization_id=ORG,
        credential_type="EmploymentCredential",
        document=json.dumps({"id": f"urn:uuid:{CREDENTIAL}", "type": ["VerifiableCredential"]}),
        list_id="list-1",
        status_index=7,
        revoked=False,
        issued_at=NOW,
    )
    await insert(
        "wallet_persons",
        person_id=PERSON,
        display_name="P.",
        token_sha256="b" * 64,
        enrolled_at=NOW,
    )
    await insert(
        "wallet_records",
        record_id=RECORD,
        person_id=PERSON,
        type="employment",
        title="Lead Teacher",
        status="verified",
        submitted_by=ORG,
        submitter_kind="issuer",
        submitted_at=NOW,
        projected_at=NOW,
        details=json.dumps({"action": "hired"}),
    )
    await insert("wallet_positions", topic="ler.records.v1", partition=0, offset=41)
    await insert(
        "notifications_subscriptions",
        subscription_id=str(uuid.uuid4()),
        organization_id=ORG,
        url="https://hr.example/hook",
        event_types=json.dumps(["credential.issued"]),
        secret="whsec_x",
        active=True,
        created_at=NOW,
    )


def ler_migrate(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ler.cli", "migrate", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


def drift(conn: sa.Connection, history: History, url: str) -> list[Any]:
    """What today's code defines for the service and the database lacks or has more of."""
    context = MigrationContext.configure(
        conn,
        opts={
            "version_table": history.version_table,
            "include_name": lambda name, kind, _parent: (
                kind != "table" or bool(name and name.startswith(history.prefixes))
            ),
        },
    )
    return list(compare_metadata(context, service_metadata(history.service, url)))


@pytest.mark.parametrize("service", sorted(HISTORIES))
async def test_the_migrated_schema_is_the_one_the_code_defines(
    service: str, database_url: str, platform: PlatformSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LER_DATA_DIR", str(platform.data_dir))
    history = HISTORIES[service]
    db = Database(database_url, sa.MetaData())
    try:
        applied = await upgrade(db, history)
        assert applied[0] == f"{service}_0001"
        assert applied[-1] == history.head()
        async with db.read() as conn:
            assert await conn.run_sync(lambda c: drift(c, history, database_url)) == []
        assert await upgrade(db, history) == []  # a second run applies nothing
    finally:
        await db.close()


async def test_ler_migrate_upgrades_a_release_store_with_its_data(
    database_url: str, platform: PlatformSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = await make_release_store(database_url)
    try:
        done = ler_migrate("--all", "--database-url", database_url)
        assert done.returncode == 0, done.stderr
        assert "verification: verification_0001" not in done.stdout  # adopted, not re-created
        assert "verification: verification_0002" in done.stdout
        for history in HISTORIES.values():
            found = await status(db, history)
            assert found.up_to_date, (history.service, found)
        async with db.read() as conn:
            count = (await conn.execute(sa.text("SELECT count(*) FROM wallet_records"))).scalar()
            assert count == 1
            for history in HISTORIES.values():
                assert await conn.run_sync(drift, history, database_url) == []
        again = ler_migrate("--all", "--database-url", database_url)
        assert again.returncode == 0
        assert again.stdout.count("up to date") == 4
    finally:
        await db.close()
    # The services run on it in production mode (which never migrates).
    monkeypatch.setenv("LER_ENV", "production")
    ctx = verification(platform, database_url=database_url)
    await ctx.store.open()
    await ctx.sla_store.open()
    try:
        credential = await ctx.store.credential(CREDENTIAL)
        assert credential is not None
        assert credential["record_id"] == RECORD
        async with ctx.store.db.transaction() as conn:
            # Since 19f7154 a record may have a second credential (an upheld appeal).
            await conn.execute(
                ctx.store.credentials.insert(),
                {**credential, "credential_id": str(uuid.uuid4()), "status_index": 8},
            )
            await conn.execute(
                ctx.store.suspensions.insert(),
                {
                    "credential_id": CREDENTIAL,
                    "list_id": "list-2",
                    "status_index": 7,
                    "suspended": False,
                },
            )
    finally:
        await ctx.store.close()
        await ctx.sla_store.close()
    store = wallet(platform, database_url=database_url).store
    await store.open()
    try:
        view = await store.wallet(PERSON)
        assert view is not None
        assert [r["record_id"] for r in view["records"]] == [RECORD]
        assert await store.positions() == {("ler.records.v1", 0): 41}
    finally:
        await store.close()


async def test_production_refuses_a_store_that_is_behind_and_names_the_command(
    database_url: str, platform: PlatformSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = await make_release_store(database_url)
    await db.close()
    monkeypatch.setenv("LER_ENV", "production")
    ctx = verification(platform, database_url=database_url)
    with pytest.raises(StoreBehind, match="run `ler migrate verification`"):
        await ctx.store.open()
    await ctx.store.close()
    probe = Database(database_url, sa.MetaData())
    try:
        found = await status(probe, VERIFICATION)
        assert found.current is None
        assert found.unversioned_tables
    finally:
        await probe.close()


async def test_the_embedded_mode_migrates_a_release_store_at_open(
    database_url: str, platform: PlatformSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = await make_release_store(database_url)
    monkeypatch.setenv("LER_ENV", "embedded")
    ctx = verification(platform, database_url=database_url)
    await ctx.store.open()
    await ctx.store.close()
    try:
        assert (await status(db, VERIFICATION)).up_to_date
        async with db.read() as conn:
            uniques = await conn.run_sync(
                lambda c: sa.inspect(c).get_unique_constraints("verification_credentials")
            )
            assert [u for u in uniques if u["column_names"] == ["record_id"]] == []
            count = await conn.execute(sa.text("SELECT count(*) FROM verification_credentials"))
            assert count.scalar() == 1
    finally:
        await db.close()


def test_ler_migrate_wants_one_service_or_all() -> None:
    done = ler_migrate()
    assert done.returncode == 2
    assert "name one service or --all" in done.stderr
