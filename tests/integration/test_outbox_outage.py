"""The enrollment outbox through a broker outage: intake keeps answering 202 while the broker is
down, and every record accepted then reaches Kafka once a broker is back on the same address.

The test runs its own embedded broker (not the session's). The embedded broker keeps everything
in memory: the one that comes back is empty, so the test creates the topics again, as
``ler run`` does at start; records published before the outage are gone with the old broker
(Kafka would keep them) and are not what this test is about.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ler.kafka import create_topics
from ler.settings import PlatformSettings
from services.enrollment.api import create_app as enrollment_app
from services.enrollment.bootstrap import bootstrap as enrollment_bootstrap
from services.enrollment.settings import EnrollmentSettings
from tests.conftest import AnyBroker, new_broker
from tests.helpers import client_for, read_topic, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[AnyBroker]:
    broker = new_broker(tmp_path)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


def _admin(platform: PlatformSettings) -> dict[str, str]:
    assert platform.admin_token is not None
    return {"Authorization": f"Bearer {platform.admin_token.get_secret_value()}"}


async def _post_batch(
    client: httpx.AsyncClient, api_key: str, people: list[str], n: int
) -> list[str]:
    records = [
        {
            "person_id": people[i % len(people)],
            "type": "employment",
            "action": "hired",
            "title": f"Assistant teacher {i}",
            "start_date": "2024-09-01",
        }
        for i in range(n)
    ]
    response = await client.post(
        "/v1/records",
        json={"records": records},
        headers={"Authorization": f"Bearer {api_key}", "Idempotency-Key": str(uuid.uuid4())},
    )
    assert response.status_code == 202, response.text
    return list(response.json()["record_ids"])


async def test_records_accepted_while_the_broker_is_down_reach_kafka_when_it_returns(
    own_broker: AnyBroker, platform: PlatformSettings, tmp_path: Path
) -> None:
    kafka = own_broker.client_settings()
    await create_topics(kafka, platform)
    ctx = enrollment_bootstrap(
        platform,
        kafka,
        EnrollmentSettings(),
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'enrollment.db'}",
    )
    async with client_for(enrollment_app(ctx)) as client:
        org = (
            await client.post(
                "/v1/organizations",
                json={"name": "Harbor Kids", "kind": "employer"},
                headers=_admin(platform),
            )
        ).json()
        people = []
        for i in range(3):
            body = {
                "given_name": f"Ada{i}",
                "family_name": uuid.uuid4().hex[:8],
                "email": f"{uuid.uuid4().hex[:8]}@example.org",
                "birth_date": "1990-01-01",
            }
            people.append(
                (await client.post("/v1/persons", json=body, headers=_admin(platform))).json()[
                    "person_id"
                ]
            )
        before = await _post_batch(client, org["api_key"], people, 50)

        async def on_kafka(expected: set[str]) -> set[str] | None:
            found = {_record_id(m) for m in await read_topic(kafka, "ler.records.v1")}
            return found if expected <= found else None

        await wait_until(lambda: on_kafka(set(before)), timeout=30)

        own_broker.stop()
        down_at = time.monotonic()
        during: list[str] = []
        for _ in range(6):
            during += await _post_batch(client, org["api_key"], people, 100)
        ready = (await client.get("/readyz")).json()
        assert ready["outbox"] >= 600, ready
        await _sleep_until(down_at + 5)
        print(f"broker down; intake answered 202 to {len(during)} records; outbox {ready}")

        # Back on the same address: Apache Kafka with its own log, Tansu empty.
        restarted = own_broker.start()
        try:
            await create_topics(kafka, platform)
            back_at = time.monotonic()
            found = await wait_until(lambda: on_kafka(set(during)), timeout=120, interval=0.5)
            seconds = time.monotonic() - back_at

            # A send that timed out during the outage may still be delivered by the producer
            # once the broker is back, before the relay's retry of that pass has deleted the
            # rows: the outbox drains shortly after the records appear, not at the same instant.
            async def drained() -> bool:
                return bool((await client.get("/readyz")).json()["outbox"] == 0)

            await wait_until(drained, timeout=60, interval=0.2)
            drained_in = time.monotonic() - back_at
            print(
                f"broker back after {back_at - down_at:.1f} s; all {len(during)} records "
                f"accepted during the outage on Kafka {seconds:.1f} s later; outbox empty "
                f"{drained_in:.1f} s later"
            )
            assert set(during) <= found
            # The relay keeps working: a record accepted now is published too.
            after = await _post_batch(client, org["api_key"], people, 10)
            await wait_until(lambda: on_kafka(set(after)), timeout=30)
        finally:
            restarted.stop()


def _record_id(message: Any) -> str:
    from ler.avro import default_codec

    return str(default_codec().decode(message.value)["record_id"])


async def _sleep_until(deadline: float) -> None:
    import asyncio

    await asyncio.sleep(max(0.0, deadline - time.monotonic()))
