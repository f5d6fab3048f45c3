"""Issue 12, item 5: ``ler replay sla`` rebuilds the SLA processor's store into an empty one,
equal row by row to the live store (items opened, warned, breached and closed; partition clocks;
positions), with ``ler process verification`` and ``ler process sla`` as their own processes, on a
broker of the test's own, SQLite and PostgreSQL. Warning and breach times come back from
``ler.sla.v1``; nothing is published again.

Failed on main before: ``ler replay`` knew only ``wallet``; and the warning and breach times
(the SLA clock's wall-clock ticks) were on no topic the store could be rebuilt from (the events'
``occurred_at`` was not the time stored)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from ler.credentials.multikey import generate_key_file
from ler.kafka import create_topics
from ler.projection import dump_tables
from ler.settings import KafkaSettings, PlatformSettings
from services.enrollment.api import create_app as enrollment_app
from services.enrollment.bootstrap import bootstrap as enrollment_bootstrap
from services.enrollment.settings import EnrollmentSettings
from services.verification.api import create_app as verification_app
from services.verification.bootstrap import bootstrap as verification_bootstrap
from services.verification.settings import VerificationSettings
from services.verification.sla_store import SlaStore
from tests.conftest import Databases, new_broker
from tests.helpers import ROOT, client_for, read_topic, start_processor, stop_process, wait_until

pytestmark = pytest.mark.integration
DID = "did:web:registry.test"
INPUTS = ("ler.records.v1", "ler.verification.v1")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def own_kafka(tmp_path: Path, platform: PlatformSettings) -> AsyncIterator[KafkaSettings]:
    broker = new_broker(tmp_path / "broker")
    broker.start()
    try:
        kafka = broker.client_settings()
        await create_topics(kafka, platform)
        yield kafka
    finally:
        broker.stop()


def processor_env(kafka: KafkaSettings, url: str, keys: Path, tmp: Path) -> dict[str, str]:
    return {
        **kafka.environment(),
        "LER_DATA_DIR": str(tmp),
        "VERIFICATION_DATABASE_URL": url,
        "VERIFICATION_SIGNING_KEY_FILE": str(keys),
        "VERIFICATION_DID": DID,
        "VERIFICATION_SLA_AUTO_SECONDS": "1",
        "VERIFICATION_SLA_REVIEW_SECONDS": "2",
        "VERIFICATION_SLA_TICK_SECONDS": "0.3",
        "VERIFICATION_SLA_LATENESS_SECONDS": "0.3",
        "VERIFICATION_BATCH_WINDOW_MS": "10",
    }


async def settled(kafka: KafkaSettings, store: SlaStore) -> bool:
    """Inputs applied to their ends, every item closed or breached, the outbox relayed."""
    ends: dict[tuple[str, int], int] = {}
    for topic in INPUTS:
        for record in await read_topic(kafka, topic):
            ends[(topic, record.partition)] = record.offset
    positions = await store.positions()
    if not ends or any(positions.get(tp, -1) < offset for tp, offset in ends.items()):
        return False
    i = store.items
    async with store.db.read() as conn:
        waiting = await conn.scalar(
            select(func.count())
            .select_from(i)
            .where(i.c.closed_at.is_(None), i.c.breached_at.is_(None))
        )
        outbox = await conn.scalar(select(func.count()).select_from(store.outbox))
    return waiting == 0 and outbox == 0


async def test_sla_replay_equals_the_live_store(
    own_kafka: KafkaSettings,
    platform: PlatformSettings,
    databases: Databases,
    tmp_path: Path,
) -> None:
    kafka = own_kafka
    keys = tmp_path / "keys"
    keys.mkdir()
    generate_key_file(keys / "key-1.json", f"{DID}#key-1", controller=DID)
    url = databases.new_url()
    env = processor_env(kafka, url, keys, tmp_path)
    settings = VerificationSettings(signing_key_file=keys, did=DID)
    live = verification_bootstrap(platform, kafka, settings, database_url=url).sla_store
    workers = [start_processor("sla", env, tmp_path / "sla.log")]
    try:
        await _stream(kafka, platform, settings, url, workers, env, tmp_path)
        await wait_until(lambda: settled(kafka, live), timeout=120, interval=0.5)
    finally:
        for worker in workers:
            stop_process(worker)
    sla_events = len(await read_topic(kafka, "ler.sla.v1"))

    rebuilt_url = databases.new_url()
    done = subprocess.run(  # noqa: ASYNC221 (the command under test; nothing else runs)
        [sys.executable, "-m", "ler.cli", "replay", "sla", "--database-url", rebuilt_url],
        env={**os.environ, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    rebuilt = verification_bootstrap(platform, kafka, settings, database_url=rebuilt_url).sla_store
    try:
        tables = [live.items, live.partition_times]
        live_rows = await dump_tables(live.db, tables)
        rebuilt_rows = await dump_tables(rebuilt.db, [rebuilt.items, rebuilt.partition_times])
        breached = [r for r in live_rows["sla_items"] if r[10] is not None]
        warned = [r for r in live_rows["sla_items"] if r[9] is not None]
        closed = [r for r in live_rows["sla_items"] if r[11] is not None]
        print(
            f"sla items: {len(live_rows['sla_items'])}, warned {len(warned)}, "
            f"breached {len(breached)}, closed {len(closed)}"
        )
        assert breached
        assert warned
        assert closed
        assert rebuilt_rows == live_rows
        assert await rebuilt.positions() == await live.positions()
        async with rebuilt.db.read() as conn:
            assert await conn.scalar(select(func.count()).select_from(rebuilt.outbox)) == 0
        assert len(await read_topic(kafka, "ler.sla.v1")) == sla_events
    finally:
        await live.close()
        await rebuilt.close()


async def _stream(
    kafka: KafkaSettings,
    platform: PlatformSettings,
    settings: VerificationSettings,
    url: str,
    workers: list[subprocess.Popen[bytes]],
    env: dict[str, str],
    tmp_path: Path,
) -> None:
    """Self-reported records (review queue) and an issuer's records (automatic), the verifier
    started late (automatic items close late), reviewer decisions on some of the reviews."""
    assert platform.admin_token is not None
    admin = bearer(platform.admin_token.get_secret_value())
    enrollment_ctx = enrollment_bootstrap(
        platform,
        kafka,
        EnrollmentSettings(),
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'enrollment.db'}",
    )
    ctx = verification_bootstrap(platform, kafka, settings, database_url=url)
    async with (
        client_for(enrollment_app(enrollment_ctx)) as enrollment,
        client_for(verification_app(ctx)) as verification,
    ):
        org = (
            await enrollment.post(
                "/v1/organizations", json={"name": "Sunrise", "kind": "employer"}, headers=admin
            )
        ).json()
        body = {"given_name": "Sam", "family_name": "Sla", "email": "sam.sla@example.org"}
        person = (
            await enrollment.post(
                "/v1/persons", json=body | {"birth_date": "1990-01-01"}, headers=admin
            )
        ).json()
        reviews = []
        for n in range(4):
            response = await enrollment.post(
                f"/v1/persons/{person['person_id']}/records",
                json={"type": "learning", "title": f"Course {n}", "completed_on": "2025-01-10"},
                headers=bearer(person["access_token"]),
            )
            assert response.status_code == 202, response.text
            reviews += response.json()["record_ids"]
        issued = await enrollment.post(
            "/v1/records",
            json={
                "records": [
                    {
                        "person_id": person["person_id"],
                        "type": "learning",
                        "title": f"Module {n}",
                        "completed_on": "2025-02-01",
                    }
                    for n in range(3)
                ]
            },
            headers=bearer(org["api_key"]),
        )
        assert issued.status_code == 202, issued.text
        workers.append(start_processor("verification", env, tmp_path / "verification.log"))
        for record_id in reviews[:2]:

            async def decided(record_id: str = record_id) -> httpx.Response | None:
                response = await verification.post(
                    f"/v1/reviews/{record_id}/decision",
                    json={"decision": "verified"},
                    headers=admin,
                )
                return response if response.status_code == 200 else None

            await wait_until(decided, timeout=60, interval=0.3)
