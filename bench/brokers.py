"""Each embedded-broker defect the brief lists, measured on Apache Kafka and on Tansu in one run.

`python -m bench.brokers` (also the last part of `make bench`). Every probe is bounded; what it
finds is printed and returned, never asserted. The table in docs/operations.md ("Brokers
compared") comes from here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from ler.broker import BrokerKind, KafkaBroker, TansuBroker, embedded_broker, kafka_available

BATCHES = 10
PER_BATCH = 5


def say(text: str) -> None:
    print(text, flush=True)


async def _topic(servers: str, name: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, 1, 1)])
    finally:
        await admin.close()


async def _produce_batches(servers: str, topic: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=servers, acks="all", linger_ms=50)
    await producer.start()
    try:
        for b in range(BATCHES):
            for i in range(PER_BATCH):
                await producer.send(topic, f"{b}-{i}".encode())
            await producer.flush()
    finally:
        await producer.stop()


async def _count(servers: str, topic: str, group: str | None = None) -> tuple[int, int | None]:
    """Messages readable from the start, and the group's committed offset (when a group)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=servers,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    tp = TopicPartition(topic, 0)
    try:
        committed = None
        deadline = time.monotonic() + 10  # a restarted coordinator loads its offsets first
        while group and committed is None and time.monotonic() < deadline:
            committed = await consumer.committed(tp)
            if committed is None:
                await asyncio.sleep(0.5)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        seen, deadline = 0, time.monotonic() + 10
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=300)
            seen += sum(len(v) for v in batch.values())
            hw = consumer.highwater(tp)
            if hw is not None and await consumer.position(tp) >= hw:
                break
        return seen, committed
    finally:
        await consumer.stop()


async def _commit(servers: str, topic: str, group: str, offset: int) -> None:
    from aiokafka.structs import OffsetAndMetadata

    consumer = AIOKafkaConsumer(bootstrap_servers=servers, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, 0)])
        await consumer.commit({TopicPartition(topic, 0): OffsetAndMetadata(offset, "")})
    finally:
        await consumer.stop()


async def list_offsets(servers: str) -> dict[str, Any]:
    """ListOffsets "latest" after 10 batches of 5 messages: the end is 50."""
    topic = f"probe.offsets.{uuid.uuid4().hex[:6]}"
    await _topic(servers, topic)
    await _produce_batches(servers, topic)
    consumer = AIOKafkaConsumer(bootstrap_servers=servers)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        end = (await consumer.end_offsets([tp]))[tp]
    finally:
        await consumer.stop()
    return {"expected": BATCHES * PER_BATCH, "list_offsets_latest": end}


async def idempotent_producer(servers: str) -> dict[str, Any]:
    producer = AIOKafkaProducer(bootstrap_servers=servers, acks="all", enable_idempotence=True)
    try:
        await asyncio.wait_for(producer.start(), 15)
        topic = f"probe.idem.{uuid.uuid4().hex[:6]}"
        await _topic(servers, topic)
        await producer.send_and_wait(topic, b"x")
        return {"starts": True}
    except Exception as exc:
        return {"starts": False, "error": f"{type(exc).__name__}: {exc}"[:160]}
    finally:
        with contextlib.suppress(Exception):
            await producer.stop()


async def restart(broker: KafkaBroker | TansuBroker) -> dict[str, Any]:
    """Produce 50 messages and commit a group offset, restart the broker, read them back."""
    servers = broker.bootstrap_servers
    topic, group = f"probe.restart.{uuid.uuid4().hex[:6]}", "probe-group"
    await _topic(servers, topic)
    await _produce_batches(servers, topic)
    await _commit(servers, topic, group, 20)
    broker.stop() if isinstance(broker, TansuBroker) else broker.stop(remove=False)
    broker.start()
    try:
        seen, committed = await asyncio.wait_for(_count(servers, topic, group), 30)
        return {"messages_after_restart": seen, "group_offset_after_restart": committed}
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"[:160]}


def librdkafka_group(servers: str) -> dict[str, Any]:
    """A librdkafka (confluent-kafka) group consumer reads 50 messages, bounded at 20 s."""
    try:
        from confluent_kafka import Consumer
    except ImportError:
        return {"measured": False, "why": "confluent-kafka is not installed"}
    topic = f"probe.rdkafka.{uuid.uuid4().hex[:6]}"
    asyncio.run(_topic(servers, topic))
    asyncio.run(_produce_batches(servers, topic))
    consumer = Consumer(
        {
            "bootstrap.servers": servers,
            "group.id": f"probe-{uuid.uuid4().hex[:6]}",
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 10_000,
        }
    )
    consumer.subscribe([topic])
    seen, started = 0, time.monotonic()
    try:
        while seen < BATCHES * PER_BATCH and time.monotonic() - started < 20:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                seen += 1
    finally:
        consumer.close()
    return {"measured": True, "consumed": seen, "seconds": round(time.monotonic() - started, 1)}


async def fetch_wait_latency(servers: str, samples: int = 40) -> dict[str, Any]:
    """Produce-to-consume latency with aiokafka's default fetch wait (500 ms): a broker that
    answers a waiting fetch when data arrives gives milliseconds; one that holds it, the wait."""
    topic = f"probe.latency.{uuid.uuid4().hex[:6]}"
    await _topic(servers, topic)
    producer = AIOKafkaProducer(bootstrap_servers=servers, acks="all", linger_ms=0)
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=servers, auto_offset_reset="latest")
    await producer.start()
    await consumer.start()
    try:
        await consumer.getmany(timeout_ms=1000)  # assigned, positioned at the end
        waits = []
        for _ in range(samples):
            sent = time.perf_counter()
            await producer.send_and_wait(topic, b"x")
            batch: dict[Any, Any] = {}
            while not batch:
                batch = await consumer.getmany(timeout_ms=2000)
            waits.append((time.perf_counter() - sent) * 1000)
            await asyncio.sleep(0.02)
        waits.sort()
        return {"p50_ms": round(waits[len(waits) // 2], 1), "max_ms": round(waits[-1], 1)}
    finally:
        await consumer.stop()
        await producer.stop()


async def probe(kind: BrokerKind, tmp: Path) -> dict[str, Any]:
    with embedded_broker(kind, data_dir=tmp / kind) as broker:
        servers = broker.bootstrap_servers
        found: dict[str, Any] = {
            "list_offsets": await list_offsets(servers),
            "idempotent_producer": await idempotent_producer(servers),
            "default_fetch_wait_latency": await fetch_wait_latency(servers),
            "librdkafka_group_consumer": await asyncio.to_thread(librdkafka_group, servers),
        }
        found["restart"] = await restart(broker)
        return found


async def run(results: dict[str, Any]) -> None:
    say("\nbroker defects, re-measured (brief: 'What Tansu gets wrong')")
    out: dict[str, Any] = {}
    kinds: tuple[BrokerKind, ...] = ("kafka", "tansu")
    with tempfile.TemporaryDirectory(prefix="ler-probe-") as tmp:
        for kind in kinds:
            if kind == "kafka" and (problem := kafka_available()) is not None:
                out[kind] = {"skipped": problem}
                continue
            out[kind] = await probe(kind, Path(tmp))
            say(f"  {kind}: {json.dumps(out[kind])}")
    results["broker_defects"] = out


if __name__ == "__main__":
    figures: dict[str, Any] = {}
    asyncio.run(run(figures))
