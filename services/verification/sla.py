"""Processing-time SLA rules: which events open and close which item, deadlines, the event-time
clock, and the dashboard's figures. Pure functions and dataclasses, tested without I/O.

Items: ``auto_verification:<record_id>`` opens when a record is submitted and closes when the
policy has routed it (verified automatically, or queued for review); ``manual_review:<record_id>``
runs from the record's submission to the reviewer's decision; ``appeal:<appeal_id>`` from filing to
decision.

The clock (event time): each input partition has a time, the largest ``occurred_at`` applied from
it; a partition read to its end counts as ``now - lateness`` (nothing older can still arrive there,
except from a producer slower than the lateness bound). The processor's clock is the minimum over
its assigned partitions, so a partition that lags (a replay, a slow relay) holds the clock back
instead of letting a decision that is still on its way look late.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from services.verification.domain import APPEAL, AUTO, QUEUES, RECORD_EVENTS, REVIEW

WINDOWS = {"24h": timedelta(hours=24), "30d": timedelta(days=30)}


@dataclass(frozen=True, slots=True)
class Budgets:
    """Processing-time budget of each queue, and where the warning falls."""

    auto_seconds: float
    review_seconds: float
    appeal_seconds: float
    warning_ratio: float = 0.8

    def seconds(self, queue: str) -> float:
        return {AUTO: self.auto_seconds, REVIEW: self.review_seconds, APPEAL: self.appeal_seconds}[
            queue
        ]

    def deadline(self, queue: str, submitted_at: datetime) -> datetime:
        return submitted_at + timedelta(seconds=self.seconds(queue))

    def warn_at(self, queue: str, submitted_at: datetime) -> datetime:
        return submitted_at + timedelta(seconds=self.seconds(queue) * self.warning_ratio)


@dataclass(frozen=True, slots=True)
class ItemKey:
    item_id: str
    queue: str
    person_id: str
    record_id: str
    organization_id: str | None
    submitted_at: datetime


@dataclass(frozen=True, slots=True)
class ItemOpened:
    item: ItemKey


@dataclass(frozen=True, slots=True)
class ItemClosed:
    item: ItemKey
    closed_at: datetime


@dataclass(frozen=True, slots=True)
class PartitionTime:
    """An event was applied from this partition at this event time (advances its clock)."""

    topic: str
    partition: int
    event_time: datetime


@dataclass(frozen=True, slots=True)
class ItemMarked:
    """Replay only: the SLA processor warned (``SlaWarning``) or breached (``SlaBreached``) an
    item at ``at``, read back from its own ``ler.sla.v1`` after the inputs were replayed (its
    wall-clock ticks cannot be re-run)."""

    item_id: str
    column: str  # warned_at | breached_at
    at: datetime


MARKS = {"SlaWarning": "warned_at", "SlaBreached": "breached_at"}

SlaChange = ItemOpened | ItemClosed | PartitionTime


def item_id(queue: str, key: str) -> str:
    return f"{queue}:{key}"


def changes_for(event_type: str, record: Mapping[str, Any]) -> list[ItemOpened | ItemClosed]:
    """Which items an event opens or closes (the caller adds the partition's time)."""
    at: datetime = record["occurred_at"]
    if event_type in RECORD_EVENTS:
        return [ItemOpened(_key(AUTO, record, at))]
    if event_type == "RecordQueuedForReview":
        return [
            ItemClosed(_key(AUTO, record, record["submitted_at"]), at),
            ItemOpened(_key(REVIEW, record, record["submitted_at"])),
        ]
    if event_type in {"RecordVerified", "RecordRejected"} and record.get("queue") in {AUTO, REVIEW}:
        return [ItemClosed(_key(record["queue"], record, record["submitted_at"]), at)]
    if event_type == "AppealFiled":
        return [ItemOpened(_key(APPEAL, record, at, str(record["appeal_id"])))]
    if event_type == "AppealDecided":
        key = _key(APPEAL, record, record["filed_at"], str(record["appeal_id"]))
        return [ItemClosed(key, at)]
    return []


def _key(
    queue: str, record: Mapping[str, Any], submitted_at: datetime, key: str | None = None
) -> ItemKey:
    organization_id = record.get("organization_id")
    if organization_id is None and record.get("submitter_kind") == "organization":
        organization_id = record.get("submitted_by")
    record_id = str(record["record_id"])
    return ItemKey(
        item_id=item_id(queue, key or record_id),
        queue=queue,
        person_id=str(record["person_id"]),
        record_id=record_id,
        organization_id=str(organization_id) if organization_id else None,
        submitted_at=submitted_at,
    )


def clock(
    partition_times: Mapping[tuple[str, int], datetime],
    assigned: Iterable[tuple[str, int]],
    caught_up: Iterable[tuple[str, int]],
    now: datetime,
    lateness: timedelta,
) -> datetime | None:
    """The processor's event-time clock (see the module doc); None while any partition is unknown."""
    done = set(caught_up)
    times = []
    for tp in assigned:
        seen = partition_times.get(tp)
        if tp in done:
            idle = now - lateness
            times.append(max(seen, idle) if seen else idle)
        elif seen is None:
            return None
        else:
            times.append(seen)
    return min(times) if times else None


def percentile(sorted_values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile of ascending values (None when empty)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass(frozen=True, slots=True)
class ItemRow:
    """What the dashboard needs of an item."""

    queue: str
    submitted_at: datetime
    deadline: datetime
    closed_at: datetime | None
    elapsed_seconds: float | None
    breached_at: datetime | None


def dashboard(items: Iterable[ItemRow], now: datetime, budgets: Budgets) -> dict[str, Any]:
    """Per queue: open backlog, oldest open age, processing-time percentiles and breaches."""
    by_queue: dict[str, list[ItemRow]] = {q: [] for q in QUEUES}
    for item in items:
        by_queue.setdefault(item.queue, []).append(item)
    out: dict[str, Any] = {}
    for queue, rows in by_queue.items():
        open_rows = [r for r in rows if r.closed_at is None]
        oldest = min((r.submitted_at for r in open_rows), default=None)
        windows = {}
        for name, span in WINDOWS.items():
            since = now - span
            closed = sorted(
                r.elapsed_seconds
                for r in rows
                if r.closed_at is not None
                and r.closed_at >= since
                and r.elapsed_seconds is not None
            )
            breaches = sum(
                1
                for r in rows
                if (r.breached_at is not None and r.breached_at >= since)
                or (
                    r.breached_at is None
                    and r.closed_at is not None
                    and r.closed_at >= since
                    and r.closed_at > r.deadline
                )
            )
            windows[name] = {
                "decided": len(closed),
                "p50_seconds": percentile(closed, 50),
                "p90_seconds": percentile(closed, 90),
                "p99_seconds": percentile(closed, 99),
                "breaches": breaches,
            }
        out[queue] = {
            "budget_seconds": budgets.seconds(queue),
            "open": len(open_rows),
            "open_breached": sum(1 for r in open_rows if r.breached_at is not None),
            "oldest_open_age_seconds": (now - oldest).total_seconds() if oldest else None,
            "windows": windows,
        }
    return out
