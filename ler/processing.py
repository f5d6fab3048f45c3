"""Stream processors: decode, validate, apply idempotently, remember the position, dead-letter.

Every processor follows the brief's processing guarantees, implemented here once:

* each consumed message is decoded with the Avro codec and checked by the processor; one that
  cannot be decoded or is invalid goes to ``ler.dlq.v1`` (original bytes, headers and the error)
  and the processor keeps going;
* the state a batch derives, the input positions (topic, partition, offset) and the messages the
  batch emits (dead letters included) are written in one database transaction (the outbox);
* on partition assignment the consumer seeks to the stored positions, and a batch whose messages
  lie at or below a stored position is dropped, so redelivery after a crash or a rebalance changes
  nothing; events are also applied idempotently by their natural keys, so a duplicated event at a
  new offset changes nothing either;
* with each position the store keeps a mark of the message at that position (a CRC-32 of its key
  and value), so a worker can tell, before consuming, that the broker's log at that offset is not
  the log the store followed (a broker that lost its data and was refilled).
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from opentelemetry.trace import SpanKind

from ler import telemetry
from ler.avro import AvroCodec, AvroError
from ler.envelope import TRACEPARENT, Envelope, event, new_envelope
from ler.outbox import OutboxSource, OutgoingMessage
from ler.sql import is_transient
from ler.topics import DLQ, Topic

log = logging.getLogger(__name__)

C = TypeVar("C")
TP = tuple[str, int]


@dataclass(frozen=True, slots=True)
class Message:
    """One consumed Kafka record, as it came off the wire."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...] = ()
    timestamp_ms: int | None = None

    @property
    def tp(self) -> TP:
        return (self.topic, self.partition)


def message_mark(key: bytes | None, value: bytes | None) -> int:
    """The mark a store keeps beside a position: CRC-32 of the message's key, then its value.
    Events carry unique ids, so two logs that differ at an offset differ in its mark."""
    return zlib.crc32(value or b"", zlib.crc32(key or b""))


@dataclass(frozen=True, slots=True)
class Event:
    """A decoded event and the message it came in."""

    message: Message
    record: dict[str, Any]

    @property
    def event_type(self) -> str:
        value: str = self.record["event_type"]
        return value

    @property
    def envelope(self) -> Envelope:
        return Envelope.from_record(self.record)

    @property
    def traceparent(self) -> list[tuple[str, bytes]]:
        """Headers for an event this one causes: its ``traceparent``, which the runner then
        re-parents to the processing span, so the trace goes on through the emitted event."""
        value = telemetry.header_traceparent(self.message.headers)
        return [(TRACEPARENT, value)] if value else []


class InvalidEvent(ValueError):
    """An event that decodes but breaks a rule; it is dead-lettered with this message."""


class StalePositions(RuntimeError):
    """Another worker already applied past this batch's offsets; the batch must be re-filtered."""


@dataclass(slots=True)
class Batch(Generic[C]):
    """What one transaction commits: changes, new positions and the messages to emit."""

    changes: list[C] = field(default_factory=list)
    # Where each change came from, (topic, partition, offset), parallel to ``changes``: stores
    # that track applied events per document (not per transaction) need it.
    origins: list[tuple[str, int, int]] = field(default_factory=list)
    positions: dict[TP, int] = field(default_factory=dict)
    # The mark (see message_mark) of the message at each new position.
    marks: dict[TP, int] = field(default_factory=dict)
    first_offsets: dict[TP, int] = field(default_factory=dict)
    outgoing: list[OutgoingMessage] = field(default_factory=list)
    messages: int = 0
    dead_letters: int = 0
    traceparents: list[bytes | None] = field(default_factory=list)
    per_topic: dict[str, int] = field(default_factory=dict)


class ProcessorStore(ABC, Generic[C]):
    """Port: where a processor keeps its state, its input positions and its outbox.

    ``commit`` must be atomic and must raise :class:`StalePositions` (writing nothing) when a stored
    position of a partition in the batch is at or past that partition's first offset in the batch.
    """

    @abstractmethod
    async def open(self) -> None:
        """Create tables or indexes if needed."""

    @abstractmethod
    async def positions(self) -> dict[TP, int]:
        """The last applied offset of each partition this processor has seen."""

    @abstractmethod
    async def position_marks(self) -> dict[TP, int]:
        """The mark of the message at each stored position (partitions with one recorded)."""

    @abstractmethod
    async def commit(self, batch: Batch[C]) -> None:
        """Apply the batch's changes, positions and outgoing messages in one transaction."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections."""

    @abstractmethod
    def outbox_source(self) -> OutboxSource:
        """Where the relay finds the messages this store's commits emitted."""


class Processor(ABC, Generic[C]):
    """A stream processor's rules: which topics it reads and what each event changes."""

    name: str
    topics: tuple[Topic, ...]

    @abstractmethod
    def changes(self, event: Event) -> Sequence[C]:
        """The state changes an event implies ([] to ignore it); raise InvalidEvent to reject it."""


def dead_letter(
    codec: AvroCodec, consumer: str, message: Message, error: str, producer: str
) -> OutgoingMessage:
    """The ``ler.dlq.v1`` message that keeps a rejected input whole, with the reason."""
    envelope = new_envelope("DeadLetterRecorded", producer)
    value = codec.encode(
        event(
            envelope,
            consumer=consumer,
            original_topic=message.topic,
            original_partition=message.partition,
            original_offset=message.offset,
            original_key=message.key,
            original_value=message.value,
            original_headers=[{"key": k, "value": v} for k, v in message.headers],
            error=error,
        )
    )
    headers = [(k, v) for k, v in message.headers if v is not None]
    return OutgoingMessage(DLQ.name, message.key, value, headers)


class Runner(Generic[C]):
    """Drives one processor over batches of messages; the Kafka client is someone else's job."""

    def __init__(
        self,
        processor: Processor[C],
        store: ProcessorStore[C],
        codec: AvroCodec,
        *,
        on_committed: Iterable[Any] = (),
        emit: bool = True,
    ) -> None:
        self.processor = processor
        self.store = store
        self.codec = codec
        self.applied: dict[TP, int] = {}
        self.on_committed = list(on_committed)
        # A replay re-derives state; what the live processor emitted was emitted already.
        self.emit = emit
        self.events_applied = 0
        self.dead_lettered = 0
        self._producer_name = f"processor.{processor.name}"
        self._topics = {t.name for t in processor.topics}

    async def load_positions(self) -> dict[TP, int]:
        self.applied = await self.store.positions()
        return dict(self.applied)

    def plan(self, messages: Sequence[Message]) -> Batch[C]:
        """Decode and check each new message; build the batch (no I/O)."""
        batch: Batch[C] = Batch()
        last: dict[TP, Message] = {}
        for message in messages:
            tp = message.tp
            if message.offset <= self.applied.get(tp, -1) or message.offset <= batch.positions.get(
                tp, -1
            ):
                continue  # redelivered: applied already
            batch.first_offsets.setdefault(tp, message.offset)
            batch.positions[tp] = message.offset
            last[tp] = message
            batch.messages += 1
            batch.traceparents.append(telemetry.header_traceparent(message.headers))
            batch.per_topic[message.topic] = batch.per_topic.get(message.topic, 0) + 1
            error = None
            if message.topic not in self._topics:
                error = f"topic {message.topic} is not an input of {self.processor.name}"
            else:
                try:
                    record = self.codec.decode(message.value)  # type: ignore[arg-type]
                    changes = self.processor.changes(Event(message, record))
                    batch.changes.extend(changes)
                    origin = (message.topic, message.partition, message.offset)
                    batch.origins.extend([origin] * len(changes))
                except (AvroError, InvalidEvent) as exc:
                    error = str(exc)
            if error is not None:
                batch.dead_letters += 1
                log.warning(
                    "%s: dead-lettering %s[%d]@%d: %s",
                    self.processor.name,
                    message.topic,
                    message.partition,
                    message.offset,
                    error,
                )
                if self.emit:
                    batch.outgoing.append(
                        dead_letter(
                            self.codec, self.processor.name, message, error, self._producer_name
                        )
                    )
        batch.marks = {tp: message_mark(m.key, m.value) for tp, m in last.items()}
        return batch

    async def process(self, messages: Sequence[Message]) -> int:
        """Apply one batch of consumed messages; returns how many were new."""
        backoff = 0.05
        while True:
            batch = self.plan(messages)
            if not batch.positions:
                return 0
            started = time.perf_counter()
            try:
                await self._commit_traced(batch)
            except StalePositions:
                log.info(
                    "%s: positions moved under us (rebalance); re-reading", self.processor.name
                )
                await self.load_positions()
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if is_transient(exc):
                    log.warning("%s: commit failed: %s; retrying", self.processor.name, exc)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 5.0)
                    continue
                if len(messages) == 1:
                    raise
                # A message that breaks the store: isolate it so the others still apply.
                log.warning("%s: batch failed (%s); applying one by one", self.processor.name, exc)
                return sum([await self._process_alone(m) for m in messages])
            self.applied.update(batch.positions)
            self.events_applied += batch.messages - batch.dead_letters
            self.dead_lettered += batch.dead_letters
            self._measure(batch, time.perf_counter() - started)
            for callback in self.on_committed:
                callback()
            return batch.messages

    async def _commit_traced(self, batch: Batch[C]) -> None:
        """Commit inside a consume span per trace of the batch's messages; emitted messages
        carry the ``traceparent`` that continues their cause's trace from that span."""
        name = self.processor.name
        attributes = {
            "messaging.system": "kafka",
            "messaging.operation.type": "process",
            "messaging.consumer.group.name": f"ler-{name}",
            "ler.processor": name,
        }
        if len(batch.per_topic) == 1:
            attributes["messaging.destination.name"] = next(iter(batch.per_topic))
        with telemetry.TraceGroups(
            f"{name} process", SpanKind.CONSUMER, batch.traceparents, attributes
        ) as spans:
            spans.set_attribute("ler.dead_letters", batch.dead_letters)
            for message in batch.outgoing:
                cause = telemetry.header_traceparent(message.headers)
                message.headers = telemetry.with_traceparent(
                    message.headers, spans.traceparent_for(cause)
                )
            with spans.step(
                f"{name} store commit",
                **{"db.operation.name": "commit", "ler.changes": len(batch.changes)},
            ):
                await self.store.commit(batch)

    def _measure(self, batch: Batch[C], seconds: float) -> None:
        name = self.processor.name
        for topic, count in batch.per_topic.items():
            telemetry.events_in(topic, count, consumer=name)
        if batch.dead_letters:
            telemetry.dead_lettered(DLQ.name, batch.dead_letters, consumer=name)
        telemetry.processing_time(f"processor.{name}", seconds)

    async def _process_alone(self, message: Message) -> int:
        try:
            return await self.process([message])
        except StalePositions:
            raise
        except Exception as exc:
            if is_transient(exc):
                raise
            reason = type(exc).__name__
            log.warning(
                "%s: %s[%d]@%d rejected by the store: %s",
                self.processor.name,
                message.topic,
                message.partition,
                message.offset,
                type(exc).__name__,
            )
        batch: Batch[C] = Batch(messages=1, dead_letters=1)
        batch.positions[message.tp] = message.offset
        batch.marks[message.tp] = message_mark(message.key, message.value)
        batch.first_offsets[message.tp] = message.offset
        if self.emit:
            batch.outgoing.append(
                dead_letter(
                    self.codec,
                    self.processor.name,
                    message,
                    f"the store rejected the event ({reason})",
                    self._producer_name,
                )
            )
        await self.store.commit(batch)
        self.applied[message.tp] = message.offset
        self.dead_lettered += 1
        return 1
