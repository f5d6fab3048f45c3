"""Kafka wiring: client options from settings, explicit topic creation, the producer.

At-least-once everywhere: acks=all, the idempotent producer where the broker supports it, no
transactions (see the brief's processing guarantees), every topic created explicitly with a fixed
partition count. What differs by broker is decided in ``ler.broker.compat``.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError, OffsetOutOfRangeError
from aiokafka.partitioner import DefaultPartitioner

from ler.broker.compat import compat
from ler.processing import message_mark
from ler.settings import KafkaSettings, PlatformSettings
from ler.topics import ALL_TOPICS, Topic

log = logging.getLogger(__name__)

MAX_RECORD_BYTES = 1_000_000
TOPIC_EXISTS = 36


def client_options(kafka: KafkaSettings) -> dict[str, Any]:
    """Connection options shared by producers, consumers and the admin client."""
    options: dict[str, Any] = {
        "bootstrap_servers": kafka.bootstrap_servers,
        "security_protocol": kafka.security_protocol,
        "request_timeout_ms": kafka.request_timeout_ms,
    }
    if kafka.security_protocol in {"SSL", "SASL_SSL"}:
        context = ssl.create_default_context(
            cafile=str(kafka.ssl_cafile) if kafka.ssl_cafile else None
        )
        if kafka.ssl_certfile:
            context.load_cert_chain(
                str(kafka.ssl_certfile), str(kafka.ssl_keyfile) if kafka.ssl_keyfile else None
            )
        options["ssl_context"] = context
    if kafka.security_protocol.startswith("SASL"):
        options["sasl_mechanism"] = kafka.sasl_mechanism or "SCRAM-SHA-512"
        options["sasl_plain_username"] = kafka.sasl_username
        options["sasl_plain_password"] = (
            kafka.sasl_password.get_secret_value() if kafka.sasl_password else None
        )
    return options


class CachedPartitioner:
    """Kafka's default (murmur2) key partitioning, remembered per key.

    Keys repeat (one per person) and murmur2 in pure Python costs ~10 µs a message; the result is
    the same as every other Kafka client's, so per-person order holds across producers.
    """

    def __init__(self, size: int = 100_000) -> None:
        self._default = DefaultPartitioner()
        self._cache: dict[tuple[bytes, int], int] = {}
        self._size = size

    def __call__(self, key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
        if key is None:
            partition: int = self._default(key, all_partitions, available)
            return partition
        slot = (key, len(all_partitions))
        cached = self._cache.get(slot)
        if cached is None:
            if len(self._cache) >= self._size:
                self._cache.clear()
            cached = self._cache[slot] = self._default(key, all_partitions, available)
        return cached


def new_producer(kafka: KafkaSettings, client_id: str) -> AIOKafkaProducer:
    """A producer that waits for every in-sync replica and keeps records under 1 MB; idempotent
    (no duplicates from its own retries) where the broker supports it."""
    return AIOKafkaProducer(
        **client_options(kafka),
        client_id=client_id,
        partitioner=CachedPartitioner(),
        acks="all",
        enable_idempotence=compat(kafka).idempotent_producer,
        linger_ms=2,
        max_batch_size=256 * 1024,
        max_request_size=MAX_RECORD_BYTES,
    )


def topic_configs(topic: Topic, replication_factor: int) -> dict[str, str]:
    """A topic's settings: compaction where its Topic says so; with replicas, acks=all writes
    need two in-sync copies (one replica may be down, never the only copy left)."""
    configs = {"cleanup.policy": "compact"} if topic.compacted else {}
    if replication_factor >= 3:
        configs["min.insync.replicas"] = "2"
    return configs


async def create_topics(
    kafka: KafkaSettings,
    platform: PlatformSettings,
    topics: Iterable[Topic] = ALL_TOPICS,
    *,
    wait_seconds: float = 30.0,
) -> list[str]:
    """Create the platform's topics (existing ones are left alone); returns the names created."""
    admin = AIOKafkaAdminClient(**client_options(kafka), client_id="ler-admin")
    deadline = asyncio.get_running_loop().time() + wait_seconds
    while True:
        try:
            await admin.start()
            break
        except KafkaConnectionError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.2)
    created = []
    try:
        wanted = list(topics)
        response = await admin.create_topics(
            [
                NewTopic(
                    t.name,
                    num_partitions=platform.topic_partitions,
                    replication_factor=platform.topic_replication_factor,
                    topic_configs=topic_configs(t, platform.topic_replication_factor),
                )
                for t in wanted
            ]
        )
        for name, code, message in response.topic_errors:
            if code == 0:
                created.append(name)
            elif code != TOPIC_EXISTS:
                raise KafkaError(f"cannot create topic {name}: error {code} {message}")
    finally:
        await admin.close()
    if created:
        log.info("created topics %s", ", ".join(created))
    return created


async def log_ends_and_marks(
    kafka: KafkaSettings, offsets: dict[tuple[str, int], int], *, wait_seconds: float = 15.0
) -> dict[tuple[str, int], tuple[int, int | None]]:
    """For each partition: where its log ends (ListOffsets where the broker answers it exactly,
    else the high-water mark of its fetch responses, see ``ler.broker.compat``), and the mark
    (``ler.processing.message_mark``) of the message at the given offset, or None when the log
    does not hold that offset. A partition whose offset lies past the log's end reports the end
    as 0 if the broker answers "offset out of range" without telling the end."""
    consumer = AIOKafkaConsumer(
        **client_options(kafka),
        enable_auto_commit=False,
        auto_offset_reset="none",
        fetch_max_wait_ms=200,
        max_partition_fetch_bytes=1024,
    )
    await consumer.start()
    ends: dict[tuple[str, int], int] = {}
    marks: dict[tuple[str, int], int | None] = {}
    try:
        tps = {TopicPartition(t, p): o for (t, p), o in offsets.items()}
        if compat(kafka).list_offsets_exact:
            for tp, end in (await consumer.end_offsets(list(tps))).items():
                ends[(tp.topic, tp.partition)] = end
            # Nothing to fetch where the log ends at or before the offset asked for.
            tps = {tp: o for tp, o in tps.items() if ends[(tp.topic, tp.partition)] > max(o, 0)}
        consumer.assign(list(tps))
        for tp, offset in tps.items():
            consumer.seek(tp, max(offset, 0))

        def settled(tp: TopicPartition) -> bool:
            key = (tp.topic, tp.partition)
            return key in ends and (key in marks or ends[key] <= tps[tp])

        deadline = asyncio.get_running_loop().time() + wait_seconds
        while not all(settled(tp) for tp in tps):
            if asyncio.get_running_loop().time() > deadline:
                missing = sorted(f"{tp.topic}[{tp.partition}]" for tp in tps if not settled(tp))
                raise TimeoutError(f"no fetch answer for {', '.join(missing)} in {wait_seconds} s")
            try:
                fetched = await consumer.getmany(timeout_ms=300)
            except OffsetOutOfRangeError as exc:
                for tp in exc.args[0] if exc.args and isinstance(exc.args[0], dict) else ():
                    ends[(tp.topic, tp.partition)] = consumer.highwater(tp) or 0
                    consumer.pause(tp)
                continue
            for tp, records in fetched.items():
                key = (tp.topic, tp.partition)
                if records and key not in marks:
                    first = records[0]
                    # A log that skips the offset (compacted, or begins later) cannot be checked.
                    at = first.offset == tps[tp]
                    marks[key] = message_mark(first.key, first.value) if at else None
                    consumer.pause(tp)
            for tp in tps:
                highwater = consumer.highwater(tp)
                if highwater is not None and (tp.topic, tp.partition) not in ends:
                    ends[(tp.topic, tp.partition)] = highwater
    finally:
        await consumer.stop()
    return {key: (end, marks.get(key)) for key, end in ends.items()}


async def started_producer(kafka: KafkaSettings, client_id: str) -> AIOKafkaProducer:
    """A started producer; waits (retrying each second) until the broker answers."""
    while True:
        producer = new_producer(kafka, client_id)
        try:
            await producer.start()
            return producer
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("%s: producer cannot start (%s); retrying", client_id, type(exc).__name__)
            await producer.stop()
            await asyncio.sleep(1.0)
