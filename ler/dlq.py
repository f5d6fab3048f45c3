"""Dead letters you can act on: read ``ler.dlq.v1``, show one, redrive (``ler dlq ...``).

A redrive republishes the dead letter's original key, value and headers to its original topic
(the key's partition, so the key's order holds from there on) and then records the audit on
``ler.dlq.v1`` itself: a ``DeadLetterRedriven`` event keyed like the dead letter (who, when,
which dead letter, where the event was republished). Redrives are idempotent by event id: a
dead letter is redriven once, and one whose original event was republished by a redrive after
it was recorded (another consumer's dead letter of the same event) is covered by that one.
Nothing here prints or returns a message's decoded fields (names, e-mails, birth dates): only
ids, positions, sizes, header names and values, and the error.
"""

from __future__ import annotations

import getpass
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from ler.avro import AvroCodec, AvroError, default_codec
from ler.envelope import event, new_envelope
from ler.kafka import client_options, started_producer
from ler.processing import REASON_HEADER
from ler.settings import KafkaSettings
from ler.topics import DLQ

REDRIVE_HEADER = "ler-redrive-of"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: str
    recorded_at: datetime
    consumer: str
    reason: str
    error: str
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...]
    event_id: str | None  # of the original event, when its value decodes
    event_type: str | None

    def summary(self) -> dict[str, Any]:
        """Ids, positions, sizes and the error: what list and show print (never the fields)."""
        return {
            "id": self.id,
            "recorded_at": self.recorded_at.isoformat(),
            "consumer": self.consumer,
            "reason": self.reason,
            "original_topic": self.topic,
            "original_partition": self.partition,
            "original_offset": self.offset,
            "original_event_id": self.event_id,
            "original_event_type": self.event_type,
            "key_bytes": None if self.key is None else len(self.key),
            "value_bytes": None if self.value is None else len(self.value),
            "headers": {k: _printable(v) for k, v in self.headers},
            "error": self.error,
        }


@dataclass(frozen=True, slots=True)
class Redrive:
    dead_letter_id: str
    at: datetime
    by: str
    original_event_id: str | None
    topic: str
    partition: int
    offset: int


@dataclass(slots=True)
class DeadLetters:
    """Everything on ``ler.dlq.v1``: the dead letters and the audit of their redrives."""

    letters: list[DeadLetter]
    redrives: dict[str, Redrive]

    def find(self, dead_letter_id: str) -> DeadLetter | None:
        return next((d for d in self.letters if d.id == dead_letter_id), None)

    def redriven_by(self, letter: DeadLetter) -> Redrive | None:
        """The redrive that republished this dead letter's event: its own, or one of the same
        original event after this dead letter was recorded."""
        own = self.redrives.get(letter.id)
        if own is not None or letter.event_id is None:
            return own
        return next(
            (
                r
                for r in self.redrives.values()
                if r.original_event_id == letter.event_id
                and r.topic == letter.topic
                and r.at >= letter.recorded_at
            ),
            None,
        )

    def select(
        self, consumer: str | None = None, since: datetime | None = None
    ) -> list[DeadLetter]:
        return [
            d
            for d in self.letters
            if (consumer is None or d.consumer == consumer)
            and (since is None or d.recorded_at >= since)
        ]

    def counts(self) -> list[dict[str, Any]]:
        """Per consumer and reason: dead letters, how many are still waiting, the latest."""
        out: dict[tuple[str, str], dict[str, Any]] = {}
        for d in self.letters:
            row = out.setdefault(
                (d.consumer, d.reason),
                {"consumer": d.consumer, "reason": d.reason, "total": 0, "waiting": 0},
            )
            row["total"] += 1
            row["waiting"] += self.redriven_by(d) is None
            row["latest"] = max(row.get("latest", ""), d.recorded_at.isoformat())
        return [out[k] for k in sorted(out)]


async def read_dead_letters(
    kafka: KafkaSettings, codec: AvroCodec | None = None, *, within: float = 30.0
) -> DeadLetters:
    """Read ``ler.dlq.v1`` from its start to its end (the fetch high-water marks)."""
    codec = codec or default_codec()
    letters: list[DeadLetter] = []
    redrives: dict[str, Redrive] = {}
    for record in await read_all(kafka, DLQ.name, within=within):
        try:
            value = codec.decode(record.value)
        except AvroError:
            continue  # not ours: the dead-letter topic holds only these two kinds
        if value["event_type"] == "DeadLetterRedriven":
            redrives[str(value["dead_letter_id"])] = Redrive(
                str(value["dead_letter_id"]),
                value["occurred_at"],
                value["redriven_by"],
                value["original_event_id"],
                value["original_topic"],
                value["republished_partition"],
                value["republished_offset"],
            )
        elif value["event_type"] == "DeadLetterRecorded":
            letters.append(_letter(codec, value, dict(record.headers or ())))
    letters.sort(key=lambda d: d.recorded_at)
    return DeadLetters(letters, redrives)


def _letter(codec: AvroCodec, value: dict[str, Any], headers: dict[str, bytes]) -> DeadLetter:
    event_id = event_type = None
    try:
        original = codec.decode(value["original_value"])
        event_id, event_type = str(original["event_id"]), str(original["event_type"])
    except (AvroError, KeyError, TypeError):
        pass
    reason = headers.get(REASON_HEADER)
    return DeadLetter(
        id=str(value["event_id"]),
        recorded_at=value["occurred_at"],
        consumer=value["consumer"],
        reason=reason.decode() if reason else "unknown",
        error=value["error"],
        topic=value["original_topic"],
        partition=value["original_partition"],
        offset=value["original_offset"],
        key=value["original_key"],
        value=value["original_value"],
        headers=tuple((h["key"], h["value"]) for h in value["original_headers"]),
        event_id=event_id,
        event_type=event_type,
    )


async def redrive(
    kafka: KafkaSettings,
    letters: list[DeadLetter],
    known: DeadLetters,
    *,
    by: str | None = None,
    codec: AvroCodec | None = None,
) -> list[tuple[DeadLetter, Redrive, bool]]:
    """Republish each dead letter's original message unless it was already (see the module);
    returns ``(letter, redrive, republished_now)`` for each."""
    codec = codec or default_codec()
    who = by or _login()
    out: list[tuple[DeadLetter, Redrive, bool]] = []
    producer = await started_producer(kafka, "ler-dlq-redrive")
    try:
        for letter in letters:
            done = known.redriven_by(letter)
            if done is not None:
                out.append((letter, done, False))
                continue
            headers = [(k, v) for k, v in letter.headers if v is not None and k != REDRIVE_HEADER]
            headers.append((REDRIVE_HEADER, letter.id.encode()))
            sent = await producer.send_and_wait(
                letter.topic, letter.value, key=letter.key, headers=headers
            )
            envelope = new_envelope("DeadLetterRedriven", "ler.dlq")
            audit = event(
                envelope,
                dead_letter_id=letter.id,
                consumer=letter.consumer,
                original_topic=letter.topic,
                original_partition=letter.partition,
                original_offset=letter.offset,
                original_event_id=letter.event_id,
                republished_partition=sent.partition,
                republished_offset=sent.offset,
                redriven_by=who,
            )
            await producer.send_and_wait(DLQ.name, codec.encode(audit), key=letter.key)
            done = Redrive(
                letter.id,
                envelope.occurred_at,
                who,
                letter.event_id,
                letter.topic,
                sent.partition,
                sent.offset,
            )
            known.redrives[letter.id] = done
            out.append((letter, done, True))
    finally:
        await producer.stop()
    return out


async def read_all(kafka: KafkaSettings, topic: str, *, within: float = 30.0) -> list[Any]:
    """Every record of a topic, from its start to the fetch high-water mark of each partition."""
    consumer = AIOKafkaConsumer(**client_options(kafka), enable_auto_commit=False)
    await consumer.start()
    try:
        found: set[int] | None = None
        for _ in range(50):
            found = consumer.partitions_for_topic(topic)
            if found:
                break
            await consumer._client.force_metadata_update()
        if not found:
            raise RuntimeError(f"topic {topic} does not exist")
        tps = [TopicPartition(topic, p) for p in sorted(found)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        out: list[Any] = []
        pending = set(tps)
        deadline = time.monotonic() + within
        while pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not read {topic} to its end in {within:g} s")
            for records in (await consumer.getmany(timeout_ms=300)).values():
                out += records
            for tp in list(pending):
                highwater = consumer.highwater(tp)
                if highwater is not None and await consumer.position(tp) >= highwater:
                    pending.discard(tp)
        return out
    finally:
        await consumer.stop()


def _printable(value: bytes | None) -> str | None:
    if value is None:
        return None
    try:
        text = value.decode("ascii")
    except UnicodeDecodeError:
        return f"<{len(value)} bytes>"
    return text if text.isprintable() else f"<{len(value)} bytes>"


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
