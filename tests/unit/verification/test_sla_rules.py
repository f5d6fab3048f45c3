"""SLA rules without I/O: items from events, the event-time clock, percentiles, the dashboard."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from services.verification.sla import (
    Budgets,
    ItemClosed,
    ItemOpened,
    ItemRow,
    changes_for,
    clock,
    dashboard,
    percentile,
)

pytestmark = pytest.mark.unit
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
BUDGETS = Budgets(auto_seconds=60, review_seconds=100, appeal_seconds=1000)


def test_items_open_on_submission_move_to_review_and_close_on_decision() -> None:
    record_id, person_id = uuid.uuid4(), uuid.uuid4()
    base = {"record_id": record_id, "person_id": person_id, "organization_id": None}
    (opened,) = changes_for(
        "EmploymentRecordSubmitted",
        {**base, "occurred_at": T0, "submitter_kind": "person", "submitted_by": str(person_id)},
    )
    assert isinstance(opened, ItemOpened)
    assert opened.item.item_id == f"auto_verification:{record_id}"

    queued = changes_for(
        "RecordQueuedForReview",
        {
            **base,
            "occurred_at": T0 + timedelta(seconds=1),
            "submitted_at": T0,
            "queue": "manual_review",
        },
    )
    assert [type(c) for c in queued] == [ItemClosed, ItemOpened]
    assert queued[1].item.item_id == f"manual_review:{record_id}"
    assert queued[1].item.submitted_at == T0  # the review clock runs from submission

    (closed,) = changes_for(
        "RecordRejected",
        {
            **base,
            "occurred_at": T0 + timedelta(seconds=50),
            "submitted_at": T0,
            "queue": "manual_review",
        },
    )
    assert isinstance(closed, ItemClosed)
    assert closed.item.item_id == f"manual_review:{record_id}"
    # A credential issued through an appeal is closed by AppealDecided, not by RecordVerified.
    assert (
        changes_for(
            "RecordVerified", {**base, "occurred_at": T0, "submitted_at": T0, "queue": "appeal"}
        )
        == []
    )


def test_appeals_are_items_of_their_own() -> None:
    appeal_id = uuid.uuid4()
    base = {
        "record_id": uuid.uuid4(),
        "person_id": uuid.uuid4(),
        "organization_id": "org",
        "appeal_id": appeal_id,
    }
    (opened,) = changes_for("AppealFiled", {**base, "occurred_at": T0})
    (closed,) = changes_for(
        "AppealDecided", {**base, "occurred_at": T0 + timedelta(days=2), "filed_at": T0}
    )
    assert opened.item.item_id == closed.item.item_id == f"appeal:{appeal_id}"
    assert closed.item.submitted_at == T0
    assert BUDGETS.deadline("appeal", T0) == T0 + timedelta(seconds=1000)
    assert BUDGETS.warn_at("appeal", T0) == T0 + timedelta(seconds=800)


def test_the_clock_is_the_slowest_partition_and_idle_partitions_follow_the_wall_clock() -> None:
    lateness = timedelta(seconds=2)
    now = T0 + timedelta(hours=1)
    a, b = ("ler.records.v1", 0), ("ler.verification.v1", 0)
    times = {a: T0 + timedelta(minutes=10), b: T0 + timedelta(minutes=5)}
    # Both lagging: the slower one holds the clock back (a decision may still be on its way).
    assert clock(times, [a, b], [], now, lateness) == T0 + timedelta(minutes=5)
    # b read to its end: nothing older can come from it, so it stands at now - lateness.
    assert clock(times, [a, b], [b], now, lateness) == T0 + timedelta(minutes=10)
    assert clock(times, [a, b], [a, b], now, lateness) == now - lateness
    # A lagging partition never seen: no clock yet (nothing is breached on a guess).
    assert clock({a: T0}, [a, b], [], now, lateness) is None
    assert clock({}, [], [], now, lateness) is None


def test_nearest_rank_percentiles() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50
    assert percentile(values, 90) == 90
    assert percentile(values, 99) == 99
    assert percentile([7.0], 99) == 7
    assert percentile([], 50) is None


def test_dashboard_counts_backlog_age_percentiles_and_breaches_per_window() -> None:
    now = T0 + timedelta(days=3)
    rows = [
        ItemRow(
            "manual_review",
            now - timedelta(seconds=500),
            now - timedelta(seconds=400),
            None,
            None,
            now - timedelta(seconds=400),
        ),
        ItemRow(
            "manual_review",
            now - timedelta(seconds=50),
            now + timedelta(seconds=50),
            None,
            None,
            None,
        ),
        ItemRow(
            "manual_review", now - timedelta(hours=2), now, now - timedelta(hours=1), 3600.0, None
        ),
        ItemRow(
            "manual_review",
            now - timedelta(days=2),
            now,
            now - timedelta(days=2) + timedelta(seconds=10),
            10.0,
            None,
        ),
        ItemRow(
            "appeal",
            now - timedelta(days=1),
            now - timedelta(hours=1),
            now - timedelta(minutes=1),
            86340.0,
            None,
        ),
    ]
    view = dashboard(rows, now, BUDGETS)
    review = view["manual_review"]
    assert review["open"] == 2
    assert review["open_breached"] == 1
    assert review["oldest_open_age_seconds"] == 500
    assert review["windows"]["24h"] == {
        "decided": 1,
        "p50_seconds": 3600.0,
        "p90_seconds": 3600.0,
        "p99_seconds": 3600.0,
        "breaches": 1,
    }
    assert review["windows"]["30d"]["decided"] == 2
    assert review["windows"]["30d"]["p50_seconds"] == 10.0
    # Decided after its deadline without a breach event: still a breach.
    assert view["appeal"]["windows"]["24h"]["breaches"] == 1
    assert view["auto_verification"]["open"] == 0
