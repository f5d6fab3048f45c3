"""The envelope every event carries, and the W3C ``traceparent`` that rides in Kafka headers."""

from __future__ import annotations

import os
import re
import secrets
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

ENVELOPE_FIELDS = (
    "event_id",
    "event_type",
    "occurred_at",
    "producer",
    "correlation_id",
    "causation_id",
)
TRACEPARENT = "traceparent"
_TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}")


@dataclass(frozen=True, slots=True)
class Envelope:
    """Who, what and when of one event; the same six fields lead every schema."""

    event_id: uuid.UUID
    event_type: str
    occurred_at: datetime
    producer: str
    correlation_id: str
    causation_id: str | None = None

    def as_fields(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "event_type": self.event_type,
            "occurred_at": self.occurred_at,
            "producer": self.producer,
            "correlation_id": self.correlation_id,
            "causation_id": self.causation_id,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Envelope:
        event_id = record["event_id"]
        return cls(
            event_id=event_id if isinstance(event_id, uuid.UUID) else uuid.UUID(str(event_id)),
            event_type=record["event_type"],
            occurred_at=record["occurred_at"],
            producer=record["producer"],
            correlation_id=record["correlation_id"],
            causation_id=record.get("causation_id"),
        )


class _RandomIds:
    """Version 4 UUIDs from the OS's random source, read 4 KiB at a time.

    ``uuid.uuid4()`` makes one ``getrandom`` system call per id; intake makes two ids per event
    (the event's and the record's), and those calls were measured at an eighth of the
    enrollment API's CPU under batch load. The bytes are the same kind (``os.urandom``), only
    fetched in bulk; each thread has its own buffer, and a forked child drops what it
    inherited (it would otherwise hand out its parent's next ids).
    """

    _CHUNK = 4096

    def __init__(self) -> None:
        self._local = threading.local()
        os.register_at_fork(after_in_child=self.forget)

    def forget(self) -> None:
        """Drop the buffered bytes (the next id reads fresh ones)."""
        self._local = threading.local()

    def __call__(self) -> uuid.UUID:
        local = self._local
        buffer: bytes = getattr(local, "buffer", b"")
        at: int = getattr(local, "at", 0)
        if at + 16 > len(buffer):
            buffer, at = os.urandom(self._CHUNK), 0
            local.buffer = buffer
        local.at = at + 16
        return uuid.UUID(bytes=buffer[at : at + 16], version=4)


new_id = _RandomIds()


def new_envelope(
    event_type: str,
    producer: str,
    *,
    correlation_id: str | None = None,
    causation: Envelope | None = None,
    occurred_at: datetime | None = None,
) -> Envelope:
    """A fresh envelope; a caused event inherits its cause's correlation id."""
    event_id = new_id()
    if correlation_id is None:
        correlation_id = causation.correlation_id if causation else str(event_id)
    return Envelope(
        event_id=event_id,
        event_type=event_type,
        occurred_at=occurred_at or datetime.now(UTC),
        producer=producer,
        correlation_id=correlation_id,
        causation_id=str(causation.event_id) if causation else None,
    )


def event(envelope: Envelope, **payload: Any) -> dict[str, Any]:
    """An event record ready for the codec: the envelope fields then the payload."""
    record = envelope.as_fields()
    record.update(payload)
    return record


def new_traceparent() -> str:
    """A new W3C trace context ``traceparent`` (version 00, sampled)."""
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


def parse_traceparent(value: str | bytes | None) -> tuple[str, str] | None:
    """``(trace_id, parent_id)`` of a valid ``traceparent`` header, else ``None``."""
    if value is None:
        return None
    text = value.decode("ascii", "replace") if isinstance(value, bytes) else value
    match = _TRACEPARENT.fullmatch(text.strip())
    if match is None or match[1] == "0" * 32 or match[2] == "0" * 16:
        return None
    return match[1], match[2]
