"""Dead letters you can act on (issue 12, item 3): ``ler dlq list|show|redrive`` on Apache Kafka.

A real record event, dead-lettered by a processor, is listed, shown without its fields, redriven
to its original topic (same key, partition, bytes and headers, plus the redrive header), audited
on ``ler.dlq.v1``, applied by the wallet's real rules, and never republished twice."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from ler.avro import default_codec
from ler.dlq import REDRIVE_HEADER, read_dead_letters
from ler.kafka import started_producer
from ler.processing import Message, dead_letter
from ler.settings import KafkaSettings, PlatformSettings
from services.enrollment.api import create_app as enrollment_app
from services.enrollment.bootstrap import bootstrap as enrollment_bootstrap
from services.enrollment.settings import EnrollmentSettings
from services.wallet.bootstrap import new_runner
from services.wallet.store import SqlWalletStore
from tests.faults.conftest import Intake, record_ids
from tests.helpers import ROOT, client_for, read_topic, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]
CODEC = default_codec()


@pytest.fixture
async def intake(
    kafka: KafkaSettings, platform: PlatformSettings, tmp_path: Path
) -> AsyncIterator[Intake]:
    ctx = enrollment_bootstrap(
        platform,
        kafka,
        EnrollmentSettings(),
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'enrollment.db'}",
    )
    async with client_for(enrollment_app(ctx)) as client:
        yield Intake(client, platform)


def ler(kafka: KafkaSettings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ler.cli", "dlq", *args],
        env={**os.environ, **kafka.environment(), "LER_TELEMETRY_EXPORTER": "none"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_a_dead_letter_is_listed_shown_redriven_once_and_audited(
    kafka: KafkaSettings, intake: Intake, tmp_path: Path
) -> None:
    await intake.setup(persons=1)
    (record_id,) = await intake.submit(1)
    # The record event as intake published it; a consumer of another release dead-letters it.
    original = await wait_until(lambda: _record_event(kafka, record_id), timeout=30)
    message = Message(
        original.topic,
        original.partition,
        original.offset,
        original.key,
        original.value,
        tuple(original.headers or ()),
    )
    consumer = f"dlqtest{os.getpid()}"
    letter = dead_letter(
        CODEC, consumer, message, "title: longer than this release allows", "processor.test"
    )
    producer = await started_producer(kafka, "test-dlq")
    try:
        await producer.send_and_wait(
            letter.topic, letter.value, key=letter.key, headers=letter.headers
        )
    finally:
        await producer.stop()
    letter_id = str(CODEC.decode(letter.value)["event_id"])

    listed = ler(kafka, "list", "--consumer", consumer, "--since", "10m")
    assert listed.returncode == 0, listed.stderr
    (line,) = listed.stdout.splitlines()
    assert line.startswith(letter_id)
    assert "rule" in line
    assert f"{original.topic}[{original.partition}]@{original.offset}" in line
    assert "waiting" in line
    assert ler(kafka, "list", "--consumer", consumer, "--since", "2999-01-01").stdout == ""
    bad = ler(kafka, "list", "--since", "yesterday")
    assert bad.returncode == 2
    assert "--since" in bad.stderr

    shown = ler(kafka, "show", letter_id)
    assert shown.returncode == 0, shown.stderr
    for expected in (
        f"original_topic: {original.topic}",
        f"original_partition: {original.partition}",
        f"original_offset: {original.offset}",
        "error: title: longer than this release allows",
        "traceparent: 00-",
        "state: waiting",
    ):
        assert expected in shown.stdout, shown.stdout
    decoded = CODEC.decode(original.value)
    for personal in (decoded["title"], "Sunrise Child Care"):
        assert personal not in shown.stdout + listed.stdout

    first = ler(kafka, "redrive", letter_id, "--by", "ops-on-call")
    assert first.returncode == 0, first.stderr
    assert f"{letter_id}: republished to {original.topic}[{original.partition}]@" in first.stdout
    again = ler(kafka, "redrive", letter_id)
    assert "already redriven" in again.stdout
    everything = ler(kafka, "redrive", "--all", "--consumer", consumer)
    assert "0 republished, 1 dead letters" in everything.stderr

    copies = [
        r
        for r in await read_topic(kafka, original.topic, timeout=30)
        if r.value == original.value and r.offset != original.offset
    ]
    (copy,) = copies  # republished once, though asked three times
    assert copy.partition == original.partition
    assert copy.key == original.key
    headers = dict(copy.headers)
    assert headers[REDRIVE_HEADER] == letter_id.encode()
    assert headers["traceparent"] == dict(original.headers)["traceparent"]

    known = await read_dead_letters(kafka)
    audit = known.redrives[letter_id]
    assert (audit.by, audit.topic, audit.partition, audit.offset) == (
        "ops-on-call",
        original.topic,
        copy.partition,
        copy.offset,
    )
    assert "redriven" in ler(kafka, "show", letter_id).stdout

    # The redriven event is a valid one: the wallet's real rules apply it.
    store = SqlWalletStore(f"sqlite+aiosqlite:///{tmp_path / 'wallet.db'}")
    try:
        await store.open()
        runner = new_runner(store, emit=False)
        await runner.process(
            [Message(copy.topic, copy.partition, copy.offset, copy.key, copy.value, ())]
        )
        assert runner.dead_lettered == 0
        assert await record_ids(store) == [record_id]
    finally:
        await store.close()


async def _record_event(kafka: KafkaSettings, record_id: str) -> Any:
    for r in await read_topic(kafka, "ler.records.v1", timeout=30):
        if record_id.encode() in (r.value or b""):
            return r
    return None
