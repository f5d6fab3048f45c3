"""Issue 12, item 4: one person's events stay in order with two replicas of a service.

Two outbox relays (two replicas) share one PostgreSQL outbox holding a person's consent grant and
then its withdrawal. The relay that claims the grant is on a slow link (its first send waits a
second before reaching the real broker): the other must not overtake it. Kafka must hold the two
events in commit order, and the partner feed fed from Kafka must end withdrawn.

Failed on main before the fix: the second relay claimed the withdrawal past the grant's locked row
(``SKIP LOCKED``) and published it first; Kafka held withdraw, grant, and the partner's export
ended with a publication instead of the retraction.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import MetaData

from ler.avro import default_codec
from ler.envelope import event, new_envelope
from ler.kafka import create_topics, new_producer
from ler.outbox import OutboxRelay, OutgoingMessage, enqueue, outbox_table
from ler.processing import Message
from ler.settings import KafkaSettings, PlatformSettings
from ler.sql import Database
from ler.topics import ENROLLMENT
from services.notifications.api import create_app as notifications_app
from services.notifications.bootstrap import bootstrap as notifications_bootstrap
from services.notifications.bootstrap import partner_feed_runner
from services.notifications.feedstore import SqlPartnerFeedStore
from services.notifications.settings import NotificationsSettings
from tests.conftest import Databases
from tests.helpers import client_for, read_topic, wait_until
from tests.integration.test_consent_withdrawal import (
    PARTNER_KEY,
    Log,
    lines,
    person_enrolled,
    register_partner,
)

pytestmark = [pytest.mark.integration, pytest.mark.postgres]
CODEC = default_codec()


class SlowLink:
    """A real producer whose first send waits ``delay`` seconds before it reaches the broker,
    as a replica on a congested link would (the wait is in the network, not in the relay)."""

    def __init__(self, producer: AIOKafkaProducer, delay: float) -> None:
        self.producer = producer
        self.delay = delay
        self.sends = 0
        self.first_send = asyncio.Event()

    async def send(self, topic: str, value: bytes, **kwargs: Any) -> Any:
        self.sends += 1
        if self.sends == 1:
            self.first_send.set()
            await asyncio.sleep(self.delay)
        return await self.producer.send(topic, value, **kwargs)

    async def stop(self) -> None:
        await self.producer.stop()


def consent_value(person_id: str, partner_id: str, granted: bool) -> bytes:
    envelope = new_envelope("ConsentChanged", "enrollment")
    record = event(
        envelope, person_id=person_id, partner_id=partner_id, granted=granted, changed_by="person"
    )
    return CODEC.encode(record)


async def publish_with_two_relays(
    kafka: KafkaSettings, url: str, person_id: str, partner_id: str
) -> None:
    db = Database(url, MetaData())
    table = outbox_table(db.metadata, "replicas")
    await db.create_tables()
    for granted in (True, False):  # two requests, two transactions: grant commits first
        async with db.transaction() as conn:
            value = consent_value(person_id, partner_id, granted)
            await enqueue(
                conn, table, [OutgoingMessage(ENROLLMENT.name, person_id.encode(), value)]
            )
    first, second = new_producer(kafka, "replica-a"), new_producer(kafka, "replica-b")
    await first.start()
    await second.start()
    slow = SlowLink(first, delay=1.0)
    replica_a = OutboxRelay(db, table, slow, batch_size=1)  # type: ignore[arg-type,unused-ignore]
    replica_b = OutboxRelay(db, table, second, batch_size=1)
    try:
        a_pass = asyncio.create_task(replica_a.publish_pending())
        await slow.first_send.wait()  # replica A holds the grant, on its slow link
        await replica_b.publish_pending()  # replica B meanwhile (its own poll)
        await a_pass
        for _ in range(10):  # then both keep polling until the outbox is empty
            if not await replica_a.pending():
                break
            await replica_b.publish_pending()
            await replica_a.publish_pending()
        assert await replica_a.pending() == 0
    finally:
        await slow.stop()
        await second.stop()
        await db.close()


async def test_two_relays_on_one_outbox_keep_a_persons_order_and_the_feed_ends_withdrawn(
    kafka: KafkaSettings, platform: PlatformSettings, postgres_server: str, tmp_path: Path
) -> None:
    await create_topics(kafka, platform)
    dbs = Databases("postgres", tmp_path, postgres_server)
    try:
        person_id, partner_id = str(uuid.uuid4()), str(uuid.uuid4())
        await publish_with_two_relays(kafka, dbs.new_url(), person_id, partner_id)

        mine = [r for r in await read_topic(kafka, ENROLLMENT.name) if r.key == person_id.encode()]
        granted = [CODEC.decode(r.value)["granted"] for r in mine]
        assert granted == [True, False], "Kafka must hold the grant, then the withdrawal"

        feed_url = dbs.new_url()
        log = Log()
        await register_partner(feed_url, log, partner_id)
        ctx = notifications_bootstrap(
            platform, kafka, NotificationsSettings(), database_url=feed_url
        )
        feed = SqlPartnerFeedStore(feed_url, ctx.pseudonym_secret, CODEC)
        await feed.open()
        feeder = partner_feed_runner(feed, emit=False)
        await feeder.load_positions()
        assert platform.admin_token is not None
        admin = {"Authorization": f"Bearer {platform.admin_token.get_secret_value()}"}
        async with client_for(notifications_app(ctx)) as api:
            agreed = await api.post(
                "/v1/agreements",
                json={"partner_id": partner_id, "elements": ["county"]},
                headers=admin,
            )
            assert agreed.status_code == 201, agreed.text
            await feed.refresh_agreements()
            # The enrollment on a partition of its own (the consents keep Kafka's positions).
            await feeder.process(
                [replace(m, partition=99) for m in person_enrolled(log, person_id)]
            )
            # The feed reads the consents as Kafka holds them, in offset order, one fetch each
            # (one batch holding both would publish nothing at all, which is right too).
            for r in mine:
                await feeder.process(
                    [Message(r.topic, r.partition, r.offset, r.key, r.value, tuple(r.headers))]
                )
            export = f"/v1/partner-feeds/{partner_id}/export"
            entries = lines(
                await api.get(export, headers={"Authorization": f"Bearer {PARTNER_KEY}"})
            )
        await feed.close()
        assert [e["event_type"] for e in entries] == ["PartnerRecordRetracted"]
    finally:
        dbs.cleanup()


class JitteryLink(SlowLink):
    """A real producer whose every send waits a few milliseconds (a replica on a busy link)."""

    def __init__(self, producer: AIOKafkaProducer, seed: int) -> None:
        super().__init__(producer, 0.0)
        self.random = random.Random(seed)

    async def send(self, topic: str, value: bytes, **kwargs: Any) -> Any:
        await asyncio.sleep(self.random.uniform(0, 0.004))
        return await self.producer.send(topic, value, **kwargs)


async def test_two_running_relays_keep_every_keys_order(
    kafka: KafkaSettings, platform: PlatformSettings, postgres_server: str, tmp_path: Path
) -> None:
    """Both replicas' relays running, small passes, jittery links: for each of 10 people, Kafka
    holds their 30 consent changes in the order they were committed."""
    await create_topics(kafka, platform)
    dbs = Databases("postgres", tmp_path, postgres_server)
    db = Database(dbs.new_url(), MetaData())
    table = outbox_table(db.metadata, "replicas")
    await db.create_tables()
    people = [str(uuid.uuid4()) for _ in range(10)]
    partner = str(uuid.uuid4())
    committed: dict[str, list[bool]] = {p: [] for p in people}
    for i in range(300):  # 300 requests, one transaction each
        person, granted = people[i % 10], (i // 10) % 2 == 0
        async with db.transaction() as conn:
            value = consent_value(person, partner, granted)
            await enqueue(conn, table, [OutgoingMessage(ENROLLMENT.name, person.encode(), value)])
        committed[person].append(granted)
    links = []
    for seed in (1, 2):
        producer = new_producer(kafka, f"replica-{seed}")
        await producer.start()
        links.append(JitteryLink(producer, seed))
    relays = [
        OutboxRelay(db, table, link, batch_size=7, poll_interval=0.05)  # type: ignore[arg-type,unused-ignore]
        for link in links
    ]
    tasks = [asyncio.create_task(r.run()) for r in relays]
    try:
        await wait_until(lambda: _empty(relays[0]), timeout=60)
    finally:
        for r in relays:
            r.stop()
        await asyncio.gather(*tasks)
        for link in links:
            await link.stop()
        await db.close()
        dbs.cleanup()
    assert all(r.published for r in relays), "both replicas published"
    keys = {p.encode(): p for p in people}
    seen: dict[str, list[bool]] = {p: [] for p in people}
    for r in await read_topic(kafka, ENROLLMENT.name):
        if r.key in keys:
            seen[keys[r.key]].append(CODEC.decode(r.value)["granted"])
    assert seen == committed


async def _empty(relay: OutboxRelay) -> bool:
    return await relay.pending() == 0
