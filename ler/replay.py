"""Rebuild a projection from the log: read every partition from its start to its end."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from ler.broker.compat import compat
from ler.kafka import client_options
from ler.processing import Message, Runner
from ler.settings import KafkaSettings

log = logging.getLogger(__name__)


class StoreNotEmptyError(RuntimeError):
    """Replays go into an empty store; this one already holds positions."""


async def replay(runner: Runner[Any], kafka: KafkaSettings, *, batch_size: int = 2000) -> int:
    """Apply every message of the processor's topics to its store; returns how many were read."""
    store = runner.store
    await store.open()
    if await runner.load_positions():
        raise StoreNotEmptyError("the target store already has positions; replay into an empty one")
    read = await read_log(
        kafka, [t.name for t in runner.processor.topics], runner.process, batch_size=batch_size
    )
    # Stores that write their events to the outbox themselves (not through the runner's emit):
    # the live processor published those already.
    discard = getattr(store, "discard_outbox", None)
    if discard is not None:
        dropped = await discard()
        log.info("replay: %d re-derived outgoing events discarded (published live)", dropped)
    log.info("replayed %d messages into %s", read, runner.processor.name)
    return read


async def read_log(
    kafka: KafkaSettings,
    topics: list[str],
    handle: Callable[[list[Message]], Awaitable[Any]],
    *,
    batch_size: int = 2000,
) -> int:
    """Hand every message of these topics, from their start, to ``handle`` in batches; returns
    how many were read.

    The end of each partition is the high-water mark of the fetch responses (ListOffsets is not
    trusted: some brokers under-report it), so the replay reads until it has caught up.
    """
    consumer = AIOKafkaConsumer(
        **client_options(kafka),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=4 * 1024 * 1024,
        **({"fetch_max_wait_ms": wait} if (wait := compat(kafka).fetch_max_wait_ms) else {}),
    )
    await consumer.start()
    read = 0
    try:
        partitions = []
        for topic in topics:
            found = await _partitions(consumer, topic)
            partitions += [TopicPartition(topic, p) for p in sorted(found)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        pending = set(partitions)
        while pending:
            batches = await consumer.getmany(*partitions, timeout_ms=500, max_records=batch_size)
            messages = [
                Message(
                    topic=r.topic,
                    partition=r.partition,
                    offset=r.offset,
                    key=r.key,
                    value=r.value,
                    headers=tuple(r.headers or ()),
                    timestamp_ms=r.timestamp,
                )
                for records in batches.values()
                for r in records
            ]
            if messages:
                await handle(messages)
                read += len(messages)
            for tp in list(pending):
                highwater = consumer.highwater(tp)
                if highwater is not None and await consumer.position(tp) >= highwater:
                    pending.discard(tp)
    finally:
        await consumer.stop()
    return read


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    for _ in range(50):
        found = consumer.partitions_for_topic(topic)
        if found:
            return set(found)
        await consumer._client.force_metadata_update()
    raise RuntimeError(f"topic {topic} does not exist")
