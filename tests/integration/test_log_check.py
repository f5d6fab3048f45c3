"""Before a processor consumes, it checks that the broker's log is the one its store followed:
long enough, and holding at each stored position the very message the store applied there."""

from __future__ import annotations

import uuid

import pytest

from ler.kafka import create_topics, started_producer
from ler.processing import message_mark
from ler.settings import KafkaSettings, PlatformSettings
from ler.streams import BrokerBehindStore, check_broker_holds
from ler.topics import Topic

pytestmark = pytest.mark.integration


async def test_a_short_log_and_a_different_log_are_refused_and_the_same_log_passes(
    kafka: KafkaSettings, platform: PlatformSettings
) -> None:
    name = f"test.log-check.{uuid.uuid4().hex[:8]}"
    await create_topics(kafka, platform, [Topic(name, "key", "a log check test")])
    producer = await started_producer(kafka, "test-log-check")
    sent = [(f"k{n}".encode(), f"event {uuid.uuid4()}".encode()) for n in range(3)]
    try:
        for key, value in sent:
            await producer.send_and_wait(name, value, key=key, partition=0)
    finally:
        await producer.stop()
    tp = (name, 0)
    at_1 = message_mark(*sent[1])

    await check_broker_holds("test", kafka, {tp: 1}, {tp: at_1})
    await check_broker_holds("test", kafka, {tp: 2}, {})  # no mark recorded: the end is checked

    with pytest.raises(BrokerBehindStore, match="another message at offset 1"):
        await check_broker_holds("test", kafka, {tp: 1}, {tp: message_mark(b"k1", b"other")})
    with pytest.raises(BrokerBehindStore, match="store applied offset 5, broker log ends at 3"):
        await check_broker_holds("test", kafka, {tp: 5}, {tp: at_1})
