"""Issue 11, item 2: the person sees why an organization's record waits for review."""

from __future__ import annotations

import pytest

from services.wallet.domain import record_status

pytestmark = pytest.mark.unit
AT = "2026-03-01T09:00:00+00:00"


def test_a_record_queued_for_want_of_an_affiliation_says_so_until_it_is_decided() -> None:
    queued = (1, "RecordQueuedForReview", AT, {"policy_rule": "unaffiliated-organization"})
    assert record_status([queued]) == {
        "status": "in_review",
        "review_reason": "unaffiliated-organization",
    }
    declined = (2, "RecordRejected", AT, {"reason_code": "declined_by_person"})
    status = record_status([declined, queued])
    assert status["status"] == "rejected"
    assert status["rejection"]["reason_code"] == "declined_by_person"
    assert "review_reason" not in status
