"""Record → Kafka → wallet projection, with the Faust worker as its own process.

Real embedded broker, real stores (SQLite and PostgreSQL): dead letters, duplicates, a killed and
restarted worker, and a replay into an empty store that must equal the live projection.
"""

from __future__ import annotations

import signal
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import func, select

from ler.avro import default_codec
from ler.kafka import client_options
from ler.replay import StoreNotEmptyError, replay
from ler.settings import KafkaSettings, PlatformSettings
from services.enrollment.api import create_app as enrollment_app
from services.enrollment.bootstrap import bootstrap as enrollment_bootstrap
from services.enrollment.settings import EnrollmentSettings
from services.wallet.api import create_app as wallet_app
from services.wallet.bootstrap import bootstrap as wallet_bootstrap
from services.wallet.bootstrap import new_runner
from services.wallet.settings import WalletSettings
from services.wallet.store import SqlWalletStore
from tests.conftest import Databases
from tests.helpers import client_for, read_topic, start_processor, stop_process, wait_until

pytestmark = pytest.mark.integration
CODEC = default_codec()


@pytest.fixture
async def enrollment(
    kafka: KafkaSettings, platform: PlatformSettings, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    ctx = enrollment_bootstrap(
        platform,
        kafka,
        EnrollmentSettings(),
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'enrollment.db'}",
    )
    async with client_for(enrollment_app(ctx)) as client:
        yield client


def admin(platform: PlatformSettings) -> dict[str, str]:
    assert platform.admin_token is not None
    return {"Authorization": f"Bearer {platform.admin_token.get_secret_value()}"}


async def enroll(
    enrollment: httpx.AsyncClient, platform: PlatformSettings, n: int
) -> tuple[str, list[dict[str, Any]]]:
    org = (
        await enrollment.post(
            "/v1/organizations",
            json={"name": "Bright Start Early Learning", "kind": "training_provider"},
            headers=admin(platform),
        )
    ).json()
    people = []
    for i in range(n):
        tag = uuid.uuid4().hex[:8]
        body = {
            "given_name": f"Pers{i}",
            "family_name": f"On{tag}",
            "email": f"{tag}@example.org",
            "birth_date": "1988-07-14",
        }
        response = await enrollment.post("/v1/persons", json=body, headers=admin(platform))
        assert response.status_code == 201
        people.append(response.json())
    return org["api_key"], people


def learning(person_id: str, i: int) -> dict[str, Any]:
    return {
        "person_id": person_id,
        "type": "learning",
        "title": f"Module {i}",
        "completed_on": "2025-03-01",
        "hours": 2,
        "competencies": ["Child Development"],
    }


async def submit(
    enrollment: httpx.AsyncClient,
    api_key: str,
    people: list[dict[str, Any]],
    count: int,
    start: int = 0,
) -> list[str]:
    batch = [learning(people[i % len(people)]["person_id"], start + i) for i in range(count)]
    response = await enrollment.post(
        "/v1/records", json={"records": batch}, headers={"Authorization": f"Bearer {api_key}"}
    )
    assert response.status_code == 202, response.text
    return list(response.json()["record_ids"])


async def count_records(store: SqlWalletStore, people: list[dict[str, Any]]) -> int:
    ids = [p["person_id"] for p in people]
    async with store.db.read() as conn:
        return int(
            await conn.scalar(
                select(func.count())
                .select_from(store.records)
                .where(store.records.c.person_id.in_(ids))
            )
            or 0
        )


async def produce(
    kafka: KafkaSettings,
    topic: str,
    key: bytes | None,
    value: bytes,
    headers: list[tuple[str, bytes]] | None = None,
) -> None:
    producer = AIOKafkaProducer(**client_options(kafka), acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=key, headers=headers or [])
    finally:
        await producer.stop()


async def test_records_reach_the_wallet_exactly_once_through_faults_and_replay(
    kafka: KafkaSettings,
    platform: PlatformSettings,
    enrollment: httpx.AsyncClient,
    databases: Databases,
    tmp_path: Path,
) -> None:
    url = databases.new_url()
    env = {
        **kafka.environment(),
        "WALLET_DATABASE_URL": url,
        "LER_DATA_DIR": str(tmp_path),
        "WALLET_BATCH_WINDOW_MS": "10",
    }
    worker = start_processor("wallet", env, tmp_path / "worker.log")
    store = SqlWalletStore(url)
    try:
        api_key, people = await enroll(enrollment, platform, 4)
        first = await submit(enrollment, api_key, people, 200)

        # Malformed bytes and an event keyed by the wrong person go to the dead-letter topic.
        marker = f"garbage-{uuid.uuid4()}".encode()
        await produce(
            kafka,
            "ler.records.v1",
            people[0]["person_id"].encode(),
            marker,
            [("traceparent", b"00-abc")],
        )
        published = await wait_until(lambda: _records_of(kafka, people[1]["person_id"]))
        await produce(kafka, "ler.records.v1", b"not-the-person", published[0].value)
        # The same event delivered a second time at a new offset changes nothing.
        await produce(kafka, "ler.records.v1", published[0].key, published[0].value)

        await store.open()
        await wait_until(lambda: _equals(count_records(store, people), 200), timeout=60)
        dead = await wait_until(
            lambda: _dead_letters(kafka, {marker, published[0].value}), timeout=30
        )
        assert sorted(d["original_topic"] for d in dead) == ["ler.records.v1", "ler.records.v1"]
        errors = {d["original_value"]: d["error"] for d in dead}
        assert "C3 01" in errors[marker]
        assert "message key must equal the person_id" in errors[published[0].value]
        assert {"key": "traceparent", "value": b"00-abc"} in next(
            d for d in dead if d["original_value"] == marker
        )["original_headers"]

        # The owner reads their wallet; nobody else does.
        wallet_ctx = wallet_bootstrap(platform, kafka, WalletSettings(), database_url=url)
        async with client_for(wallet_app(wallet_ctx)) as wallet:
            mine = await wallet.get(
                f"/v1/wallets/{people[0]['person_id']}",
                headers={"Authorization": f"Bearer {people[0]['access_token']}"},
            )
            assert mine.status_code == 200
            records = mine.json()["records"]
            assert len(records) == 50
            assert {r["record_id"] for r in records} <= set(first)
            assert records[0]["status"] == "submitted"
            assert records[0]["submitted_by"]["name"] == "Bright Start Early Learning"
            assert records[0]["completed_on"] == "2025-03-01"
            theirs = await wallet.get(
                f"/v1/wallets/{people[1]['person_id']}",
                headers={"Authorization": f"Bearer {people[0]['access_token']}"},
            )
            assert theirs.status_code == 404
            assert "records" not in theirs.json()
            assert (await wallet.get(f"/v1/wallets/{people[0]['person_id']}")).status_code == 401

        # kill -9 the worker, keep submitting, restart: it resumes from its stored positions.
        stop_process(worker, signal.SIGKILL)
        await submit(enrollment, api_key, people, 120, start=200)
        worker = start_processor("wallet", env, tmp_path / "worker.log")
        await wait_until(lambda: _equals(count_records(store, people), 320), timeout=60)

        # Replaying the log into an empty store gives the same projection, positions included.
        replayed = SqlWalletStore(databases.new_url())
        try:
            await replay(new_runner(replayed, emit=False), kafka)
            live_positions = await wait_until(lambda: _same_positions(store, replayed), timeout=30)
            assert live_positions
            assert await store.dump() == await replayed.dump()
            with pytest.raises(StoreNotEmptyError):
                await replay(new_runner(replayed, emit=False), kafka)
        finally:
            await replayed.close()
        assert await count_records(store, people) == 320
    finally:
        stop_process(worker)
        await store.close()
    log = (tmp_path / "worker.log").read_text()
    for p in people:
        assert p["access_token"] not in log


async def _records_of(kafka: KafkaSettings, person_id: str) -> list[Any]:
    return [m for m in await read_topic(kafka, "ler.records.v1") if m.key == person_id.encode()]


async def _equals(awaitable: Any, expected: int) -> bool:
    return bool(await awaitable == expected)


async def _dead_letters(kafka: KafkaSettings, originals: set[bytes]) -> list[dict[str, Any]] | None:
    found = [CODEC.decode(m.value) for m in await read_topic(kafka, "ler.dlq.v1")]
    # The topic also carries the audit of redrives (DeadLetterRedriven), which holds no bytes.
    mine = [d for d in found if d.get("original_value") in originals]
    return mine if len(mine) >= len(originals) else None


async def _same_positions(live: SqlWalletStore, replayed: SqlWalletStore) -> dict[Any, int] | None:
    a, b = await live.positions(), await replayed.positions()
    return a if a == b else None
