"""Issue 12, item 5: ``ler replay notifications`` and ``ler replay partner-feed`` rebuild the
notifications database's two projections into an empty store, equal row by row to the live ones
(``ler process notifications`` and ``ler process partner-feed`` as their own processes, on a
broker of the test's own, SQLite and PostgreSQL). API-owned state (subscriptions, preferences,
agreements) is restored first, as the disaster-recovery procedure says; nothing rebuilt is sent
again and nothing is published.

Failed on main before: ``ler replay`` knew only ``wallet`` (argparse refused the others)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Table, func, select

from ler.avro import default_codec
from ler.kafka import create_topics
from ler.settings import KafkaSettings, PlatformSettings
from ler.sql import Database
from ler.sqlstore import SqlProcessorStore
from services.enrollment.api import create_app as enrollment_app
from services.enrollment.bootstrap import bootstrap as enrollment_bootstrap
from services.enrollment.settings import EnrollmentSettings
from services.notifications.api import create_app as notifications_app
from services.notifications.bootstrap import bootstrap as notifications_bootstrap
from services.notifications.feed import ELEMENTS
from services.notifications.feedstore import SqlPartnerFeedStore
from services.notifications.replay import api_owned, notifications_dump, partner_feed_dump
from services.notifications.settings import NotificationsSettings
from services.notifications.store import SqlNotificationStore
from tests.conftest import AnyBroker, Databases, new_broker
from tests.helpers import ROOT, client_for, read_topic, start_processor, stop_process, wait_until
from tests.integration.test_notifications import (
    admin,
    bearer,
    enroll,
    processor_env,
    publish,
    register,
    submit,
    until_status,
    verification_event,
)

pytestmark = pytest.mark.integration
INPUTS = ("ler.enrollment.v1", "ler.records.v1", "ler.verification.v1", "ler.sla.v1")


@pytest.fixture
def own_kafka(tmp_path: Path) -> Iterator[AnyBroker]:
    broker = new_broker(tmp_path / "broker")
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
async def kafka_of_test(own_kafka: AnyBroker, platform: PlatformSettings) -> KafkaSettings:
    kafka = own_kafka.client_settings()
    await create_topics(kafka, platform)
    return kafka


@pytest.fixture
async def enrollment(
    kafka_of_test: KafkaSettings, platform: PlatformSettings, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    ctx = enrollment_bootstrap(
        platform,
        kafka_of_test,
        EnrollmentSettings(),
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'enrollment.db'}",
    )
    async with client_for(enrollment_app(ctx)) as client:
        yield client


async def caught_up(kafka: KafkaSettings, store: SqlProcessorStore[Any], topics: Any) -> bool:
    ends: dict[tuple[str, int], int] = {}
    for topic in topics:
        for record in await read_topic(kafka, topic):
            ends[(topic, record.partition)] = record.offset
    positions = await store.positions()
    return bool(ends) and all(positions.get(tp, -1) >= offset for tp, offset in ends.items())


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ler.cli", *args],
        env={**os.environ, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def ler_replay(projection: str, url: str, env: dict[str, str]) -> str:
    done = cli("replay", projection, "--database-url", url, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout


async def copy_rows(source: Database, target: Database, tables: list[Table]) -> int:
    """Restore API-owned tables (what a backup holds) into the new database."""
    copied = 0
    async with source.read() as conn:
        rows = {
            t.name: [dict(r) for r in (await conn.execute(select(t))).mappings()] for t in tables
        }
    async with target.transaction() as conn:
        for t in tables:
            if rows[t.name]:
                await conn.execute(t.insert(), rows[t.name])
                copied += len(rows[t.name])
    return copied


async def test_notifications_and_partner_feed_replays_equal_the_live_projections(
    kafka_of_test: KafkaSettings,
    platform: PlatformSettings,
    enrollment: httpx.AsyncClient,
    databases: Databases,
    tmp_path: Path,
) -> None:
    kafka = kafka_of_test
    url = databases.new_url()
    env = {
        **processor_env(kafka, platform, url, tmp_path),
        "NOTIFICATIONS_WEBHOOK_ALLOW_PRIVATE_URLS": "true",
    }
    secret = env["NOTIFICATIONS_PSEUDONYM_SECRET"].encode()
    workers = [
        start_processor("notifications", env, tmp_path / "notifications.log"),
        start_processor("partner-feed", env, tmp_path / "partner-feed.log"),
    ]
    live = SqlNotificationStore(url)
    feed = SqlPartnerFeedStore(url, secret, default_codec())
    ctx = notifications_bootstrap(
        platform, kafka, NotificationsSettings(webhook_allow_private_urls=True), database_url=url
    )
    try:
        async with client_for(notifications_app(ctx)) as api:
            await _stream(kafka, platform, enrollment, api)
            await wait_until(lambda: caught_up(kafka, live, INPUTS), timeout=90)
            await wait_until(lambda: caught_up(kafka, feed, INPUTS[:3]), timeout=90)
    finally:
        for worker in workers:
            stop_process(worker)
    before_feed_topic = len(await read_topic(kafka, "ler.partner-feed.v1"))

    rebuilt_url = databases.new_url()
    rebuilt = SqlNotificationStore(rebuilt_url)
    rebuilt_feed = SqlPartnerFeedStore(rebuilt_url, secret, default_codec())
    try:
        await rebuilt.open()
        assert await copy_rows(live.db, rebuilt.db, api_owned(live.t)) >= 3
        out = ler_replay("notifications", rebuilt_url, env)
        assert "replayed" in out, out
        ler_replay("partner-feed", rebuilt_url, env)
        live_dump, replayed_dump = await notifications_dump(live), await notifications_dump(rebuilt)
        assert all(live_dump[name] for name in live_dump), {k: len(v) for k, v in live_dump.items()}
        assert replayed_dump == live_dump
        assert await partner_feed_dump(rebuilt_feed) == await partner_feed_dump(feed)
        assert await rebuilt.positions() == await live.positions()
        assert await rebuilt_feed.positions() == await feed.positions()
        # Nothing rebuilt is sent again, nothing is published again.
        for table in (rebuilt.t.messages, rebuilt.t.deliveries):
            async with rebuilt.db.read() as conn:
                states = set((await conn.execute(select(table.c.state).distinct())).scalars())
            assert states == {"replayed"}, (table.name, states)
        for store in (rebuilt, rebuilt_feed):
            async with store.db.read() as conn:
                assert await conn.scalar(select(func.count()).select_from(store.outbox)) == 0
        assert len(await read_topic(kafka, "ler.partner-feed.v1")) == before_feed_topic
        # A second replay into the same store is refused.
        again = cli("replay", "notifications", "--database-url", rebuilt_url, env=env)
        assert again.returncode != 0
        assert "already has positions" in again.stderr
    finally:
        for store in (live, feed, rebuilt, rebuilt_feed):
            await store.close()


async def _stream(
    kafka: KafkaSettings,
    platform: PlatformSettings,
    enrollment: httpx.AsyncClient,
    api: httpx.AsyncClient,
) -> None:
    """Organizations, people, consents, records, decisions and a breach; a subscription, a
    preference and an agreement written through the notifications API."""
    partner = await register(enrollment, platform, "Registry Alliance", "partner")
    employer = await register(enrollment, platform, "Sunrise Child Care", "employer")
    key = bearer(employer["api_key"])
    people = [
        await enroll(enrollment, platform, name, county="Dane County") for name in ("Ada", "Bo")
    ]
    subscription = {
        "url": "http://127.0.0.1:9/hooks",
        "event_types": ["record.verified", "record.rejected", "sla.breached"],
    }
    await until_status(lambda: api.post("/v1/subscriptions", json=subscription, headers=key), 201)
    agreement = {"partner_id": partner["organization_id"], "elements": sorted(ELEMENTS)}
    await until_status(
        lambda: api.post("/v1/agreements", json=agreement, headers=admin(platform)), 201
    )
    bo = people[1]
    await until_status(
        lambda: api.put(
            f"/v1/persons/{bo['person_id']}/notification-preferences",
            json={"events": {"record.verified": False}},
            headers=bearer(bo["access_token"]),
        ),
        200,
    )
    events = []
    for person in people:
        consent = await enrollment.post(
            f"/v1/persons/{person['person_id']}/consents",
            json={"partner_id": partner["organization_id"], "granted": True},
            headers=bearer(person["access_token"]),
        )
        assert consent.status_code == 200, consent.text
        for i in range(3):
            record_id = await submit(
                enrollment,
                employer["api_key"],
                {
                    "person_id": person["person_id"],
                    "type": "learning",
                    "title": f"Module {i}",
                    "completed_on": "2025-02-01",
                    "hours": 2,
                },
            )
            pid, org = person["person_id"], employer["organization_id"]
            if i == 0:
                events.append(
                    verification_event(
                        "RecordVerified",
                        pid,
                        record_id,
                        org,
                        queue="auto_verification",
                        credential_id=str(uuid.uuid4()),
                        credential_type="EmploymentCredential",
                        credential="{}",
                    )
                )
            elif i == 1:
                events.append(
                    verification_event(
                        "RecordRejected",
                        pid,
                        record_id,
                        org,
                        queue="manual_review",
                        reason_code="insufficient_evidence",
                        note="no certificate",
                    )
                )
    await publish(kafka, "ler.verification.v1", events)
    withdraw = await enrollment.post(
        f"/v1/persons/{bo['person_id']}/consents",
        json={"partner_id": partner["organization_id"], "granted": False},
        headers=bearer(bo["access_token"]),
    )
    assert withdraw.status_code == 200, withdraw.text
