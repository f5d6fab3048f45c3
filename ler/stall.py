"""A processor that stopped on a failure it retries: since when, on what, how often.

What is reported holds no personal data: the exception's type, whether a retry is expected to
resolve it (``transient``), and where in the code it was raised (file, line, function): never
its message, which may quote the event or a bound SQL parameter.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ler import telemetry
from ler.transient import is_transient

FIRST_BACKOFF = 0.05  # seconds
MAX_BACKOFF = 5.0


def raised_at(exc: BaseException) -> str:
    """``file:line in function`` of the innermost frame that raised ``exc`` (no message)."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "unknown"
    last = frames[-1]
    return f"{last.filename.rsplit('/', 1)[-1]}:{last.lineno} in {last.name}"


@dataclass(slots=True)
class Stall:
    """The current failure of one processor (one per runner)."""

    consumer: str
    since_wall: float
    since: float  # monotonic
    error: str
    where: str
    transient: bool
    attempts: int = 0
    backoff: float = FIRST_BACKOFF

    @classmethod
    def begin(cls, consumer: str, exc: BaseException) -> Stall:
        return cls(
            consumer,
            time.time(),
            time.monotonic(),
            type(exc).__name__,
            raised_at(exc),
            is_transient(exc),
        )

    def failed(self, exc: BaseException) -> float:
        """Record one more failed attempt; returns how long to wait before the next one."""
        self.error, self.where, self.transient = (
            type(exc).__name__,
            raised_at(exc),
            is_transient(exc),
        )
        self.attempts += 1
        telemetry.processor_retry(self.consumer, self.error)
        telemetry.processor_stalled(self.consumer, self.seconds)
        wait = self.backoff
        self.backoff = min(self.backoff * 2, MAX_BACKOFF)
        return wait

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.since

    def report(self) -> dict[str, Any]:
        """What ``/readyz``, ``/lag`` and the ops dashboard show of it."""
        return {
            "since": datetime.fromtimestamp(self.since_wall, UTC).isoformat(),
            "seconds": round(self.seconds, 3),
            "error": self.error,
            "where": self.where,
            "transient": self.transient,
            "attempts": self.attempts,
        }
