"""The fault experiments' rig: a broker of the test's own, the enrollment service in-process, the
wallet projector as its own process, and a report line on the terminal for what each test did."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from ler.kafka import create_topics
from ler.replay import replay
from ler.settings import KafkaSettings, PlatformSettings
from services.enrollment.api import create_app as enrollment_app
from services.enrollment.bootstrap import bootstrap as enrollment_bootstrap
from services.enrollment.settings import EnrollmentSettings
from services.wallet.bootstrap import new_runner
from services.wallet.store import SqlWalletStore
from tests.conftest import AnyBroker, new_broker
from tests.helpers import client_for, read_topic

Say = Callable[[str], None]


@pytest.fixture
def say(request: pytest.FixtureRequest) -> Say:
    """Print a line of the experiment's report on the terminal (captured output or not)."""
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    name = request.node.name

    def write(line: str) -> None:
        print(line)
        if reporter is not None and capture is not None:
            with capture.global_and_fixture_disabled():
                reporter.write_line(f"\n[{name}] {line}")

    return write


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[AnyBroker]:
    """A broker for this test alone (the test may stop and restart it)."""
    broker = new_broker(tmp_path)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
async def fault_kafka(own_broker: AnyBroker, platform: PlatformSettings) -> KafkaSettings:
    kafka = own_broker.client_settings()
    await create_topics(kafka, platform)
    return kafka


class Intake:
    """The enrollment service in-process: enrolls people and submits records as an issuer."""

    def __init__(self, client: httpx.AsyncClient, platform: PlatformSettings) -> None:
        self.client = client
        assert platform.admin_token is not None
        self.admin = {"Authorization": f"Bearer {platform.admin_token.get_secret_value()}"}
        self.api_key = ""
        self.people: list[str] = []
        self.accepted: list[str] = []

    async def setup(self, persons: int) -> None:
        org = await self.client.post(
            "/v1/organizations",
            json={"name": "Sunrise Child Care", "kind": "employer"},
            headers=self.admin,
        )
        assert org.status_code == 201, org.text
        self.api_key = org.json()["api_key"]
        for i in range(persons):
            body = {
                "given_name": f"Fault{i}",
                "family_name": uuid.uuid4().hex[:10],
                "email": f"{uuid.uuid4().hex[:10]}@example.org",
                "birth_date": "1991-05-17",
            }
            response = await self.client.post("/v1/persons", json=body, headers=self.admin)
            assert response.status_code == 201, response.text
            self.people.append(response.json()["person_id"])

    async def submit(self, n: int) -> list[str]:
        start = len(self.accepted)
        records = [
            {
                "person_id": self.people[(start + i) % len(self.people)],
                "type": "learning",
                "title": f"Module {start + i}",
                "completed_on": "2025-02-03",
                "hours": 1.5,
            }
            for i in range(n)
        ]
        response = await self.client.post(
            "/v1/records",
            json={"records": records},
            headers={"Authorization": f"Bearer {self.api_key}"},
        )
        assert response.status_code == 202, response.text
        ids = list(response.json()["record_ids"])
        self.accepted += ids
        return ids

    async def outbox(self) -> int:
        return int((await self.client.get("/readyz")).json()["outbox"] or 0)


@contextlib.asynccontextmanager
async def open_intake(
    kafka: KafkaSettings, platform: PlatformSettings, tmp_path: Path
) -> AsyncIterator[Intake]:
    """The enrollment service in-process on its own SQLite store, publishing to ``kafka``."""
    ctx = enrollment_bootstrap(
        platform,
        kafka,
        EnrollmentSettings(),
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'enrollment.db'}",
    )
    async with client_for(enrollment_app(ctx)) as client:
        yield Intake(client, platform)


@pytest.fixture
async def intake(
    fault_kafka: KafkaSettings, platform: PlatformSettings, tmp_path: Path
) -> AsyncIterator[Intake]:
    async with open_intake(fault_kafka, platform, tmp_path) as running:
        yield running


async def submit_for(intake: Intake, seconds: float, batch: int = 100) -> tuple[int, float]:
    """Submit batches for ``seconds`` (a pause of 0.25 s between); returns how many requests
    and the slowest answer."""
    deadline = time.monotonic() + seconds
    requests, slowest = 0, 0.0
    while time.monotonic() < deadline:
        started = time.monotonic()
        await intake.submit(batch)
        slowest = max(slowest, time.monotonic() - started)
        requests += 1
        await asyncio.sleep(0.25)
    return requests, slowest


def worker_env(kafka: KafkaSettings, url: str, tmp_path: Path) -> dict[str, str]:
    return {
        **kafka.environment(),
        "WALLET_DATABASE_URL": url,
        "LER_DATA_DIR": str(tmp_path),
        "WALLET_BATCH_WINDOW_MS": "10",
        "LER_TELEMETRY_EXPORTER": "none",
    }


async def record_ids(store: SqlWalletStore) -> list[str]:
    async with store.db.read() as conn:
        return [r for (r,) in await conn.execute(select(store.records.c.record_id))]


async def count_rows(store: SqlWalletStore) -> int:
    async with store.db.read() as conn:
        return int(await conn.scalar(select(func.count()).select_from(store.records)) or 0)


async def replay_equals_live(
    live: SqlWalletStore, kafka: KafkaSettings, replay_url: str, say: Say
) -> dict[str, list[dict[str, Any]]]:
    """Replay the whole log into an empty store and compare it with the live projection, rows
    and positions; the positions must also be each partition's last offset (every message
    applied, none twice: the runner applies offsets in order and drops those at or below its
    stored position)."""
    replayed = SqlWalletStore(replay_url)
    try:
        read = await replay(new_runner(replayed, emit=False), kafka)
        live_dump, replayed_dump = await live.dump(), await replayed.dump()
        assert live_dump == replayed_dump
        live_positions, replayed_positions = await live.positions(), await replayed.positions()
        assert live_positions == replayed_positions
        ends: dict[tuple[str, int], int] = {}
        for topic in {t for t, _ in live_positions}:
            for message in await read_topic(kafka, topic, timeout=30):
                ends[(topic, message.partition)] = message.offset
        assert live_positions == ends
        say(
            f"replayed {read} messages into an empty store: equal to the live projection "
            f"({', '.join(f'{k}: {len(v)} rows' for k, v in live_dump.items())}); positions "
            f"equal and at each partition's last offset ({len(ends)} partitions)"
        )
        return live_dump
    finally:
        await replayed.close()
