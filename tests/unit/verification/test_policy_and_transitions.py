"""Verification rules without I/O: the routing policy, and who may make which transition."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest

from services.verification.domain import (
    AUTO,
    PENDING,
    REJECTED,
    REVIEW,
    REVOKED,
    VERIFIED,
    PolicyError,
    RecordSubmitted,
    RoutingSubject,
    TransitionError,
    VerificationRuleError,
    changes_for,
    check_appeal,
    check_appeal_decision,
    check_review_decision,
    check_revocation,
    parse_policy,
)
from services.verification.settings import DEFAULT_POLICY

pytestmark = pytest.mark.unit
DEFAULT = parse_policy(json.loads(DEFAULT_POLICY.read_text()))


@pytest.mark.parametrize(
    ("subject", "queue"),
    [
        (RoutingSubject("organization", "employment", "employer", affiliated=True), AUTO),
        (RoutingSubject("organization", "learning", "employer", affiliated=True), AUTO),
        (RoutingSubject("organization", "learning", "training_provider", affiliated=True), AUTO),
        (RoutingSubject("organization", "credential", "training_provider", affiliated=True), AUTO),
        (RoutingSubject("organization", "employment", "training_provider"), REVIEW),
        (RoutingSubject("person", "employment"), REVIEW),
        (RoutingSubject("person", "learning"), REVIEW),
    ],
)
def test_the_shipped_policy_verifies_issuers_and_reviews_self_reports(
    subject: RoutingSubject, queue: str
) -> None:
    assert DEFAULT.route(subject).queue == queue


def test_first_matching_rule_decides_and_an_organization_can_be_singled_out() -> None:
    org = str(uuid.uuid4())
    policy = parse_policy(
        {
            "rules": [
                {"name": "probation", "organization_id": org, "route": "manual_review"},
                {"submitter_kind": "organization", "route": "auto_verification"},
            ],
            "default": "manual_review",
        }
    )
    assert policy.route(RoutingSubject("organization", "learning", "employer", org)).rule == (
        "probation"
    )
    other = RoutingSubject(
        "organization", "learning", "employer", str(uuid.uuid4()), affiliated=True
    )
    assert policy.route(other).queue == AUTO
    assert policy.route(RoutingSubject("person", "learning")).rule == "default"


def test_a_broken_policy_names_every_problem() -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(
            {
                "rules": [
                    {"route": "yes"},
                    {"record_type": "diploma", "route": "manual_review"},
                    {
                        "submitter_kind": "person",
                        "organization_kind": "employer",
                        "route": "auto_verification",
                    },
                    {"organization_id": "not-a-uuid", "route": "auto_verification", "colour": 1},
                ],
                "default": "maybe",
            },
            "policy.json",
        )
    message = str(caught.value)
    for expected in (
        "policy.json.default",
        "rules[0].route",
        "rules[1].record_type",
        "rules[2]: a rule for self-reported records names no organization",
        "rules[3].organization_id: must be a UUID",
        "rules[3]: unknown keys ['colour']",
    ):
        assert expected in message


def test_review_decisions_need_a_pending_record_and_a_listed_reason() -> None:
    check_review_decision(PENDING, "verified", None)
    check_review_decision(PENDING, "rejected", "duplicate")
    for state, decision, reason, status in (
        (None, "verified", None, 404),
        (VERIFIED, "verified", None, 409),
        (REJECTED, "rejected", "other", 409),
        (PENDING, "rejected", None, 422),
        (PENDING, "rejected", "because", 422),
    ):
        with pytest.raises(TransitionError) as caught:
            check_review_decision(state, decision, reason)
        assert caught.value.status == status


def test_only_the_owner_appeals_a_rejection_or_revocation_once() -> None:
    pete, olive = str(uuid.uuid4()), str(uuid.uuid4())
    assert check_appeal(REJECTED, pete, pete, False) == "rejection"
    assert check_appeal(REVOKED, pete, pete, False) == "revocation"
    for args, status in (
        ((REJECTED, pete, olive, False), 404),
        ((None, None, pete, False), 404),
        ((PENDING, pete, pete, False), 409),
        ((VERIFIED, pete, pete, False), 409),
        ((REJECTED, pete, pete, True), 409),
    ):
        with pytest.raises(TransitionError) as caught:
            check_appeal(*args)
        assert caught.value.status == status


def test_an_appeal_is_decided_once_and_not_by_the_original_reviewer() -> None:
    check_appeal_decision("pending", "reviewer:b", "reviewer:a")
    check_appeal_decision("pending", "admin", "admin")
    for args, status in (
        (("pending", "reviewer:a", "reviewer:a"), 403),
        (("upheld", "admin", "reviewer:a"), 409),
        ((None, "admin", ""), 404),
    ):
        with pytest.raises(TransitionError) as caught:
            check_appeal_decision(*args)
        assert caught.value.status == status


def test_revocation_by_the_issuing_organization_or_an_admin() -> None:
    check_revocation(VERIFIED, "org-1", "org-1", False)
    check_revocation(VERIFIED, "", "org-1", True)
    for args, status in (
        ((VERIFIED, "org-2", "org-1", False), 404),
        ((REVOKED, "org-1", "org-1", False), 409),
        ((None, "", None, True), 404),
    ):
        with pytest.raises(TransitionError) as caught:
            check_revocation(*args)
        assert caught.value.status == status


def test_record_events_become_submissions_keyed_by_person() -> None:
    person, record = uuid.uuid4(), uuid.uuid4()
    event = {
        "event_id": uuid.uuid4(),
        "event_type": "LearningRecordSubmitted",
        "occurred_at": datetime(2026, 1, 2, tzinfo=UTC),
        "producer": "enrollment",
        "correlation_id": "c",
        "causation_id": None,
        "record_id": record,
        "person_id": person,
        "submitted_by": "org-1",
        "submitter_kind": "organization",
        "title": "First Aid",
        "completed_on": datetime(2025, 1, 2, tzinfo=UTC).date(),
    }
    (change,) = changes_for("LearningRecordSubmitted", event, str(person).encode())
    assert isinstance(change, RecordSubmitted)
    assert change.organization_id == "org-1"
    assert change.data["completed_on"] == "2025-01-02"
    assert "event_id" not in change.data
    with pytest.raises(VerificationRuleError, match="message key"):
        changes_for("LearningRecordSubmitted", event, b"someone-else")
    assert changes_for("ConsentChanged", {}, None) == []
