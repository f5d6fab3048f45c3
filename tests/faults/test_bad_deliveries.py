"""Every event delivered twice and out of order; malformed bytes on every consumed topic.

Real events come from the enrollment service (on the session's broker); the experiment writes
them to a broker of its own in a shuffled order, each twice, with malformed messages on every
partition of every topic the wallet projector consumes. The projector runs as its own process.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from ler.avro import default_codec
from ler.kafka import client_options
from ler.processing import Message
from ler.settings import KafkaSettings, PlatformSettings
from services.enrollment.api import create_app as enrollment_app
from services.enrollment.bootstrap import bootstrap as enrollment_bootstrap
from services.enrollment.settings import EnrollmentSettings
from services.wallet.agents import WalletProjector
from services.wallet.bootstrap import new_runner
from services.wallet.store import SqlWalletStore
from tests.faults.conftest import Intake, Say, count_rows, replay_equals_live, worker_env
from tests.helpers import client_for, read_topic, start_processor, stop_process, wait_until

pytestmark = [pytest.mark.faults, pytest.mark.timeout(180)]
CODEC = default_codec()


@pytest.fixture
async def source(
    kafka: KafkaSettings, platform: PlatformSettings, tmp_path: Path
) -> AsyncIterator[list[Any]]:
    """Real enrollment and record events, in the order the enrollment service published them."""
    ctx = enrollment_bootstrap(
        platform,
        kafka,
        EnrollmentSettings(),
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'source.db'}",
    )
    async with client_for(enrollment_app(ctx)) as client:
        intake = Intake(client, platform)
        await intake.setup(persons=12)
        for _ in range(3):
            await intake.submit(100)
        keys = {p.encode() for p in intake.people}

        async def published() -> list[Any] | None:
            found = [
                m
                for topic in ("ler.enrollment.v1", "ler.records.v1")
                for m in await read_topic(kafka, topic)
                if m.key in keys
            ]
            return found if len(found) == 12 + 300 else None

        yield await wait_until(published, timeout=30)


async def _send(
    kafka: KafkaSettings, messages: Sequence[tuple[str, bytes | None, bytes | None, int | None]]
) -> list[tuple[str, int, int]]:
    producer = AIOKafkaProducer(**client_options(kafka), acks="all", linger_ms=5)
    await producer.start()
    try:
        sent = [
            await producer.send(topic, value, key=key, partition=partition)
            for topic, key, value, partition in messages
        ]
        return [(m.topic, m.partition, m.offset) for m in [await f for f in sent]]
    finally:
        await producer.stop()


async def _in_order_once(source: list[Any], url: str) -> dict[str, Any]:
    """The projection of the events applied once, in the order they were published."""
    store = SqlWalletStore(url)
    await store.open()
    runner = new_runner(store, emit=False)
    await runner.load_positions()
    ordered = sorted(source, key=lambda m: (m.topic != "ler.enrollment.v1", m.partition, m.offset))
    for i, m in enumerate(ordered):
        await runner.process([Message(m.topic, 0, i, m.key, m.value)])
    dump = await store.dump()
    await store.close()
    return dump


async def test_every_event_twice_and_out_of_order_changes_nothing(
    source: list[Any], fault_kafka: KafkaSettings, tmp_path: Path, say: Say
) -> None:
    deliveries = [(m.topic, m.key, m.value, None) for m in source] * 2
    random.Random(6).shuffle(deliveries)
    await _send(fault_kafka, deliveries)
    url = f"sqlite+aiosqlite:///{tmp_path / 'wallet.db'}"
    worker = start_processor("wallet", worker_env(fault_kafka, url, tmp_path), tmp_path / "w.log")
    store = SqlWalletStore(url)
    try:
        await store.open()
        await wait_until(lambda: _positions_at_end(store, fault_kafka), timeout=90, interval=0.3)
        say(
            f"delivered {len(source)} events twice each in a shuffled order "
            f"({len(deliveries)} messages; records before their person's enrollment)"
        )
        assert await count_rows(store) == 300
        live = await replay_equals_live(
            store, fault_kafka, f"sqlite+aiosqlite:///{tmp_path / 'r.db'}", say
        )
        reference = await _in_order_once(source, f"sqlite+aiosqlite:///{tmp_path / 'ref.db'}")
        assert live == reference
        say("the projection equals the events applied once, in order: nothing applied twice")
    finally:
        stop_process(worker)
        await store.close()


async def test_malformed_bytes_on_every_consumed_topic_go_to_dead_letters_exactly(
    source: list[Any],
    fault_kafka: KafkaSettings,
    platform: PlatformSettings,
    tmp_path: Path,
    say: Say,
) -> None:
    valid = [(m.topic, m.key, m.value, None) for m in source]
    person_event = next(m for m in source if m.topic == "ler.enrollment.v1")
    malformed: list[tuple[str, bytes | None, bytes | None, int | None]] = []
    for topic in (t.name for t in WalletProjector.topics):
        for partition in range(platform.topic_partitions):
            key = f"{uuid.uuid4()}".encode()
            malformed += [
                (topic, key, b"\x00\x01 not avro at all", partition),
                (topic, key, b"", partition),
                (topic, key, None, partition),  # a tombstone
                (topic, key, b"\xc3\x01" + b"\xff" * 8 + b"unknown schema", partition),
                (topic, key, person_event.value[:20], partition),  # cut short
                (topic, b"not-the-person", person_event.value, partition),  # breaks a rule
            ]
    mixed = valid + malformed
    random.Random(7).shuffle(mixed)
    offsets = await _send(fault_kafka, mixed)
    bad_at = {where for where, message in zip(offsets, mixed, strict=True) if message in malformed}
    assert len(bad_at) == len(malformed)
    url = f"sqlite+aiosqlite:///{tmp_path / 'wallet.db'}"
    worker = start_processor("wallet", worker_env(fault_kafka, url, tmp_path), tmp_path / "w.log")
    store = SqlWalletStore(url)
    try:
        await store.open()
        await wait_until(lambda: _positions_at_end(store, fault_kafka), timeout=90, interval=0.3)

        async def dead_letters() -> list[dict[str, Any]] | None:
            found = [CODEC.decode(m.value) for m in await read_topic(fault_kafka, "ler.dlq.v1")]
            return found if len(found) >= len(malformed) else None

        dead = await wait_until(dead_letters, timeout=30)
        where = {(d["original_topic"], d["original_partition"], d["original_offset"]) for d in dead}
        assert len(dead) == len(malformed)
        assert where == bad_at
        by_place = {(t, p, o): m for (t, p, o), m in zip(offsets, mixed, strict=True)}
        for d in dead:
            original = by_place[
                (d["original_topic"], d["original_partition"], d["original_offset"])
            ]
            assert d["original_value"] == original[2]
            assert d["original_key"] == original[1]
            assert d["consumer"] == "wallet"
            assert d["error"]
        say(
            f"{len(malformed)} malformed messages on {len(WalletProjector.topics)} topics x "
            f"{platform.topic_partitions} partitions among {len(valid)} valid ones: exactly "
            f"those {len(dead)} are dead letters, bytes and keys intact"
        )
        assert await count_rows(store) == 300
        await replay_equals_live(
            store, fault_kafka, f"sqlite+aiosqlite:///{tmp_path / 'r.db'}", say
        )
        reference = await _in_order_once(source, f"sqlite+aiosqlite:///{tmp_path / 'ref.db'}")
        assert await store.dump() == reference
        say("the valid events' projection is unchanged by the malformed ones")
    finally:
        stop_process(worker)
        await store.close()


async def _positions_at_end(store: SqlWalletStore, kafka: KafkaSettings) -> bool:
    ends: dict[tuple[str, int], int] = {}
    for topic in WalletProjector.topics:
        for m in await read_topic(kafka, topic.name):
            ends[(topic.name, m.partition)] = m.offset
    return await store.positions() == ends
