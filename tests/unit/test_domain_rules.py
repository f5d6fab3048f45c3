"""Domain rules of enrollment and the wallet, without I/O."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest

from services.enrollment.domain import IdentityKeys, record_dates_problems, record_event
from services.wallet.domain import PersonJoined, RecordAdded, WalletRuleError, changes_for

pytestmark = pytest.mark.unit
TODAY = date(2026, 11, 22)


def test_identity_keys_ignore_case_accents_spaces_and_hyphens() -> None:
    a = IdentityKeys.of("José", "García-López", " Jose@Example.org ", date(1990, 1, 2))
    b = IdentityKeys.of("jose", "GARCIA LOPEZ", "jose@example.org", date(1990, 1, 2))
    assert a == b
    assert (
        IdentityKeys.of("jose", "garcia lopez", "x@y.z", date(1990, 1, 3)).name_birth
        != a.name_birth
    )


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (
            {
                "type": "employment",
                "action": "hired",
                "start_date": date(2024, 5, 1),
                "end_date": date(2024, 4, 1),
            },
            [("end_date", "must not be before start_date")],
        ),
        (
            {"type": "employment", "action": "separated", "start_date": date(2024, 5, 1)},
            [("end_date", "required when action is separated")],
        ),
        (
            {"type": "employment", "action": "hired", "start_date": date(2028, 1, 1)},
            [("start_date", "must be within a year from today")],
        ),
        (
            {"type": "learning", "completed_on": date(2026, 11, 23)},
            [("completed_on", "must not be in the future")],
        ),
        (
            {"type": "credential", "issued_on": date(2025, 1, 1), "expires_on": date(2024, 1, 1)},
            [("expires_on", "must not be before issued_on")],
        ),
        ({"type": "credential", "issued_on": date(2025, 1, 1), "expires_on": None}, []),
        ({"type": "employment", "action": "role_changed", "start_date": date(2026, 1, 1)}, []),
    ],
)
def test_record_date_rules(record: dict[str, object], expected: list[tuple[str, str]]) -> None:
    assert record_dates_problems(record, TODAY) == expected


def _employment_event() -> dict[str, object]:
    person = str(uuid.uuid4())
    return record_event(
        {
            "type": "employment",
            "person_id": person,
            "title": "Lead Teacher",
            "action": "hired",
            "start_date": date(2024, 1, 2),
            "soc_code": "25-2011",
        },
        uuid.uuid4(),
        submitted_by="org-1",
        submitter_kind="organization",
        correlation_id="c-1",
    )


def test_a_record_event_becomes_a_wallet_record() -> None:
    record = _employment_event()
    record["occurred_at"] = datetime(2026, 1, 1, tzinfo=UTC)
    (change,) = changes_for("EmploymentRecordSubmitted", record, str(record["person_id"]).encode())
    assert isinstance(change, RecordAdded)
    assert change.type == "employment"
    assert change.details == {"action": "hired", "start_date": "2024-01-02", "soc_code": "25-2011"}


def test_a_record_keyed_by_someone_else_is_rejected() -> None:
    record = _employment_event()
    with pytest.raises(WalletRuleError, match="message key must equal the person_id"):
        changes_for("EmploymentRecordSubmitted", record, b"someone-else")


def test_enrollment_gives_the_wallet_only_a_display_name_and_token_hash() -> None:
    person = uuid.uuid4()
    enrolled_at = datetime(2026, 1, 1, tzinfo=UTC)
    record: dict[str, object] = {
        "person_id": person,
        "given_name": "Pete",
        "family_name": "Example",
        "access_token_sha256": "ab" * 32,
        "occurred_at": enrolled_at,
    }
    (change,) = changes_for("PersonEnrolled", record, str(person).encode())
    assert change == PersonJoined(str(person), "Pete Example", "ab" * 32, enrolled_at)


def test_events_the_wallet_does_not_show_change_nothing() -> None:
    assert changes_for("ConsentChanged", {}, None) == []
    assert changes_for("SomethingNewerThanThisCode", {}, None) == []
