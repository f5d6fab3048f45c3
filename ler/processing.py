"""Stream processors: decode, validate, apply idempotently, remember the position, dead-letter.

Every processor follows the brief's processing guarantees, implemented here once:

* each consumed message is decoded with the Avro codec and checked by the processor; one that
  cannot be decoded or breaks a rule (``InvalidEvent``) goes to ``ler.dlq.v1`` (original bytes,
  headers, the error, and its reason in the ``ler-dlq-reason`` header) and the processor keeps
  going;
* any other failure (the store away, a missing column, a bug in the rules or the store) is not
  the event's: the runner stops on that batch, retries it with backoff (50 ms doubling to 5 s)
  and reports itself stalled (:class:`ler.stall.Stall`: ``/readyz``, ``/lag``, the metric
  ``ler.processor.stalled``) until the batch applies; no position moves past it;
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
from ler.stall import Stall
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


# Why an input was dead-lettered: the ``ler-dlq-reason`` header of its dead letter.
REASON_HEADER = "ler-dlq-reason"
UNDECODABLE = "undecodable"
RULE = "rule"
NOT_AN_INPUT = "not-an-input"


def dead_letter(
    codec: AvroCodec,
    consumer: str,
    message: Message,
    error: str,
    producer: str,
    *,
    reason: str = RULE,
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
    headers = [(k, v) for k, v in message.headers if v is not None and k != REASON_HEADER]
    headers.append((REASON_HEADER, reason.encode()))
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
        self.stall: Stall | None = None
        self._producer_name = f"processor.{processor.name}"
        self._topics = {t.name for t in processor.topics}

    async def load_positions(self) -> dict[TP, int]:
        self.applied = await self.store.positions()
        return dict(self.applied)

    def plan(self, messages: Sequence[Message], *, rejected: str | None = None) -> Batch[C]:
        """Decode and check each new message; build the batch (no I/O). With ``rejected`` (the
        rule the store found broken), each new message is dead-lettered with that error."""
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
            error: str | None
            if rejected is not None:
                reason, error = RULE, f"the store rejected the event: {rejected}"
            else:
                reason, error = self._check(message, batch)
            if error is not None:
                batch.dead_letters += 1
                log.warning(
                    "%s: dead-lettering %s[%d]@%d (%s): %s",
                    self.processor.name,
                    message.topic,
                    message.partition,
                    message.offset,
                    reason,
                    error,
                )
                if self.emit:
                    batch.outgoing.append(
                        dead_letter(
                            self.codec,
                            self.processor.name,
                            message,
                            error,
                            self._producer_name,
                            reason=reason,
                        )
                    )
        batch.marks = {tp: message_mark(m.key, m.value) for tp, m in last.items()}
        return batch

    def _check(self, message: Message, batch: Batch[C]) -> tuple[str, str | None]:
        """Add the message's changes to the batch; or say why it is dead-lettered (reason,
        error). Any other exception is not the event's: it propagates (the runner stops)."""
        if message.topic not in self._topics:
            return NOT_AN_INPUT, f"topic {message.topic} is not an input of {self.processor.name}"
        try:
            record = self.codec.decode(message.value)  # type: ignore[arg-type]
        except AvroError as exc:
            return UNDECODABLE, str(exc)
        try:
            changes = self.processor.changes(Event(message, record))
        except InvalidEvent as exc:
            return RULE, str(exc)
        batch.changes.extend(changes)
        origin = (message.topic, message.partition, message.offset)
        batch.origins.extend([origin] * len(changes))
        return RULE, None

    async def process(self, messages: Sequence[Message]) -> int:
        """Apply one batch of consumed messages; returns how many were new.

        It returns only once the batch is applied: a failure that is not the events' own (the
        store is away, a column is missing, a bug in the rules or the store) stops the
        processor here, retried with backoff and reported (:attr:`stall`), and never moves a
        position past an unapplied event. Only an event that cannot be decoded or breaks a
        rule (``InvalidEvent``, from the rules or from the store) is dead-lettered.
        """
        rejected: str | None = None  # the rule the store found the one new message breaking
        while True:
            try:
                batch = self.plan(messages, rejected=rejected)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bug in the rules: not the event's fault
                await self._stalled(exc)
                continue
            if not batch.positions:
                self._resumed()
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
            except InvalidEvent as exc:
                if batch.messages > 1:
                    # A rule the store checks against its state: find the event that breaks it.
                    log.warning("%s: a rule failed in the batch; applying one by one", self.name)
                    return sum([await self.process([m]) for m in messages])
                rejected = str(exc)
                continue
            except Exception as exc:
                await self._stalled(exc)
                continue
            self._resumed()
            self.applied.update(batch.positions)
            self.events_applied += batch.messages - batch.dead_letters
            self.dead_lettered += batch.dead_letters
            self._measure(batch, time.perf_counter() - started)
            for callback in self.on_committed:
                callback()
            return batch.messages

    @property
    def name(self) -> str:
        return self.processor.name

    @property
    def ready(self) -> bool:
        """False while the processor is stopped on a failure (see :attr:`stall`)."""
        return self.stall is None

    async def _stalled(self, exc: Exception) -> None:
        if self.stall is None:
            self.stall = Stall.begin(self.name, exc)
        wait = self.stall.failed(exc)
        # The type and the place, never the message (it may quote the event's data).
        log.warning(
            "%s: stopped on %s (%s, %s) for %.1f s, attempt %d; nothing dead-lettered; "
            "retrying in %.2f s",
            self.name,
            self.stall.error,
            "transient" if self.stall.transient else "not transient",
            self.stall.where,
            self.stall.seconds,
            self.stall.attempts,
            wait,
        )
        await asyncio.sleep(wait)

    def _resumed(self) -> None:
        if self.stall is None:
            return
        log.warning(
            "%s: applying again after %.1f s stopped (%d failed attempts, last %s)",
            self.name,
            self.stall.seconds,
            self.stall.attempts,
            self.stall.error,
        )
        self.stall = None
        telemetry.processor_stalled(self.name, 0.0)

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
