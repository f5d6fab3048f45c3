"""Notification, webhook and partner-feed rules, without I/O."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from ler.avro import default_codec
from ler.envelope import event, new_envelope
from services.notifications.domain import (
    NOTICE_KINDS,
    ORGANIZATION_EVENT_TYPES,
    PARTNER_EVENT_TYPES,
    Notice,
    NotificationRuleError,
    WebhookEvent,
    event_types_problem,
    new_webhook_secret,
    notification_changes,
    preferences_problems,
    retry_delay,
    sign,
    url_problem,
    wants,
    webhook_id_for,
)
from services.notifications.feed import (
    ELEMENTS,
    FeedPerson,
    FeedRecord,
    PersonFacts,
    age_band,
    element_values,
    elements_problem,
    feed_changes,
    pseudonymous_id,
    role_category,
    select_elements,
)
from services.notifications.mail import Templates, notice_context
from services.notifications.settings import NotificationsSettings

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[3]
PERSON = str(uuid.uuid4())
ORG = str(uuid.uuid4())


def decision(event_type: str, organization_id: str | None = ORG, **fields: Any) -> dict[str, Any]:
    return event(
        new_envelope(event_type, "verification"),
        person_id=PERSON,
        record_id=str(uuid.uuid4()),
        organization_id=organization_id,
        record_type="learning",
        **fields,
    )


def test_a_verified_record_means_a_message_and_a_webhook_for_its_submitter() -> None:
    record = decision("RecordVerified", credential_id="c-1", credential_type="OpenBadgeCredential")
    notice, webhook = notification_changes("RecordVerified", record, PERSON.encode())
    assert isinstance(notice, Notice)
    assert notice.kind == "record.verified"
    assert notice.context["credential_id"] == "c-1"
    assert isinstance(webhook, WebhookEvent)
    assert webhook.organization_id == ORG
    assert webhook.event_type == "record.verified"
    assert webhook.data["record_id"] == str(record["record_id"])
    # The same event redelivered makes the same message id: no second e-mail.
    again = notification_changes("RecordVerified", record, PERSON.encode())[0]
    assert isinstance(again, Notice)
    assert again.message_id == notice.message_id


def test_a_self_reported_record_has_no_organization_to_tell() -> None:
    changes = notification_changes(
        "RecordRejected", decision("RecordRejected", None, reason_code="other"), PERSON.encode()
    )
    assert [type(c) for c in changes] == [Notice]


def test_webhooks_carry_no_free_text_and_queue_events_reach_only_organizations() -> None:
    record = decision("RecordRejected", reason_code="duplicate", note="Ada's scan is blurry")
    (_, webhook) = notification_changes("RecordRejected", record, PERSON.encode())
    assert isinstance(webhook, WebhookEvent)
    assert "note" not in webhook.data
    queued = notification_changes(
        "RecordQueuedForReview", decision("RecordQueuedForReview"), PERSON.encode()
    )
    assert [type(c) for c in queued] == [WebhookEvent]


def test_an_event_keyed_by_someone_else_is_refused() -> None:
    with pytest.raises(NotificationRuleError):
        notification_changes("RecordVerified", decision("RecordVerified"), b"another")


def test_signature_matches_the_standard_webhooks_example() -> None:
    # The worked example of the Standard Webhooks specification.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    expected = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body) == expected


def test_secrets_are_whsec_base64_of_32_random_bytes() -> None:
    one, two = new_webhook_secret(), new_webhook_secret()
    assert one != two
    assert re.fullmatch(r"whsec_[A-Za-z0-9+/]+={0,2}", one)
    assert len(base64.b64decode(one[6:])) == 32


def test_webhook_ids_are_stable_per_subscription_and_event() -> None:
    sub, evt = str(uuid.uuid4()), str(uuid.uuid4())
    assert webhook_id_for(sub, evt) == webhook_id_for(sub, evt)
    assert webhook_id_for(sub, evt) != webhook_id_for(str(uuid.uuid4()), evt)
    assert webhook_id_for(sub, evt).startswith("msg_")


def test_retries_back_off_exponentially_with_jitter_up_to_a_cap() -> None:
    assert retry_delay(1, 5, 3600, 0.0) == 2.5
    assert retry_delay(1, 5, 3600, 0.999) < 5
    assert retry_delay(3, 5, 3600, 0.0) == 10
    assert retry_delay(30, 5, 3600, 0.999) < 3600
    assert retry_delay(30, 5, 3600, 0.0) == 1800


@pytest.mark.parametrize(
    ("url", "private", "ok"),
    [
        ("https://hr.example.org/hooks", False, True),
        ("http://127.0.0.1:9000/x", True, True),
        ("http://127.0.0.1:9000/x", False, False),
        ("http://10.1.2.3/x", False, False),
        ("http://localhost/x", False, False),
        ("http://localhost./x", False, False),
        ("http://169.254.169.254/latest/meta-data/", False, False),
        ("http://[::ffff:127.0.0.1]/x", False, False),
        ("http://[fd00::1]/x", False, False),
        ("http://100.64.0.1/x", False, False),
        (
            "http://hooks.example.org/x",
            False,
            True,
        ),  # a name: its addresses are checked on delivery
        ("ftp://example.org/x", True, False),
        ("javascript:alert(1)", True, False),
        ("https://user:pw@example.org/", True, False),
        ("https:///nohost", True, False),
        ("https://example.org:99999/", True, False),
    ],
)
def test_webhook_urls(url: str, private: bool, ok: bool) -> None:
    assert (url_problem(url, allow_private=private) is None) is ok


def test_partners_subscribe_only_to_their_feed_and_organizations_not_to_feeds() -> None:
    assert event_types_problem(list(ORGANIZATION_EVENT_TYPES), "employer") is None
    assert event_types_problem(list(PARTNER_EVENT_TYPES), "partner") is None
    assert event_types_problem(["record.verified"], "partner") is not None
    assert event_types_problem(["partner_feed.record_published"], "employer") is not None
    assert "unknown" in (event_types_problem(["record.eaten"], "employer") or "")
    for required in ("record.verified", "record.rejected", "credential.revoked"):
        assert required in ORGANIZATION_EVENT_TYPES
    assert {"appeal.decided", "sla.breached"} <= set(ORGANIZATION_EVENT_TYPES)


def test_preferences_mute_a_kind_but_never_due_process_notices() -> None:
    assert not wants("record.verified", True, {"record.verified": False})
    assert not wants("record.verified", False, {})
    assert wants("record.rejected", False, {"record.rejected": False})
    assert preferences_problems({"record.verified": False}) == []
    assert preferences_problems({"record.rejected": False})
    assert preferences_problems({"nope": True})


def test_every_template_renders_with_every_placeholder_filled() -> None:
    templates = Templates()
    settings = NotificationsSettings()
    context = {
        "record_id": "r-1",
        "credential_id": "c-1",
        "reason_code": "insufficient_evidence",
        "note": "<b>bold</b>",
        "decision": "upheld",
        "queue": "manual_review",
        "deadline": "2026-01-01T00:00:00+00:00",
    }
    for kind in NOTICE_KINDS:
        rendered = templates.render(kind, notice_context(kind, context, "Ada", "CDA", settings))
        assert "$" not in rendered.subject + rendered.text + rendered.html
        assert "Ada" in rendered.text
        assert "<b>bold</b>" not in rendered.html
    rejected = templates.render(
        "record.rejected", notice_context("record.rejected", context, "Ada", "CDA", settings)
    )
    assert "/v1/records/r-1/appeals" in rejected.text
    assert "not enough to confirm" in rejected.text


# ------------------------------------------------------------------ partner feed


def test_pseudonyms_are_stable_per_partner_and_unlinkable_across_partners() -> None:
    secret, person = b"s" * 32, str(uuid.uuid4())
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    assert pseudonymous_id(secret, a, person) == pseudonymous_id(secret, a, person)
    assert pseudonymous_id(secret, a, person) != pseudonymous_id(secret, b, person)
    assert pseudonymous_id(b"t" * 32, a, person) != pseudonymous_id(secret, a, person)
    # Independently: HMAC-SHA256 under HMAC-SHA256(secret, label + partner).
    key = hmac.new(secret, f"ler-partner-feed|v1|{a}".encode(), hashlib.sha256).digest()
    expected = hmac.new(key, person.encode(), hashlib.sha256).hexdigest()
    assert pseudonymous_id(secret, a, person) == "psn_" + expected


def test_coarse_elements() -> None:
    assert role_category("25-2011") == "25-0000"
    assert role_category("99-9999") is None
    assert role_category(None) is None
    today = date(2026, 6, 1)
    assert age_band(1988, today) == "35-44"
    assert age_band(2010, today) == "under 18"
    assert age_band(1950, today) == "65+"


def test_rejected_and_revoked_records_leave_the_feed() -> None:
    records = (
        FeedRecord("e1", "p", "employment", "25-0000", "employed", date(2020, 1, 1)),
        FeedRecord("e2", "p", "employment", "39-0000", "separated", date(2024, 1, 1)),
        FeedRecord("l1", "p", "learning", hours=10.0),
        FeedRecord("l2", "p", "learning", hours=2.5),
        FeedRecord("c1", "p", "credential", credential_type="CDA"),
        FeedRecord("c2", "p", "credential", credential_type="CPR"),
        FeedRecord("c3", "p", "credential", credential_type="Pending"),
    )
    statuses = {"e2": "rejected", "l2": "rejected", "c1": "verified", "c2": "revoked"}
    facts = PersonFacts(1990, "Dane County", "associate", records, statuses)
    values = element_values(facts, date(2026, 1, 1))
    assert values["role_category"] == "25-0000"
    assert values["employment_status"] == "employed"
    assert values["training_hours"] == 10.0
    assert values["credential_types"] == ["CDA"]
    picked = select_elements(values, ["county"])
    assert picked["county"] == "Dane County"
    assert {k for k, v in picked.items() if v is not None} == {"county"}


def test_enrollment_gives_the_feed_no_name_email_or_birth_date() -> None:
    record = event(
        new_envelope("PersonEnrolled", "enrollment"),
        person_id=PERSON,
        given_name="Ada",
        family_name="Quill",
        email="ada@example.org",
        birth_date=date(1988, 7, 14),
        county="  Dane   County ",
        education_level="associate",
        demographics={"gender": "f"},
        access_token_sha256="0" * 64,
    )
    (person,) = feed_changes("PersonEnrolled", record, PERSON.encode())
    assert isinstance(person, FeedPerson)
    text = repr(person)
    assert "Ada" not in text
    assert "Quill" not in text
    assert "example.org" not in text
    assert "07" not in text.replace(PERSON, "")
    assert person.county == "Dane County"


def test_element_list_is_documented_with_sources() -> None:
    doc = (ROOT / "docs" / "partner-feed.md").read_text()
    for element in ELEMENTS:
        assert f"`{element}`" in doc, element
    assert elements_problem(["county", "name"]) is not None
    assert elements_problem(["county", "county"]) is not None
    assert elements_problem(list(ELEMENTS)) is None


def test_feed_events_encode_with_their_schemas() -> None:
    codec = default_codec()
    values = select_elements(
        element_values(PersonFacts(1990, "Dane", None), datetime.now(UTC).date()), ["county"]
    )
    published = event(
        new_envelope("PartnerRecordPublished", "notifications"),
        partner_id=str(uuid.uuid4()),
        pseudonymous_id="psn_x",
        sequence=1,
        elements=["county"],
        **values,
    )
    assert codec.decode(codec.encode(published))["county"] == "Dane"
    retracted = event(
        new_envelope("PartnerRecordRetracted", "notifications"),
        partner_id=str(uuid.uuid4()),
        pseudonymous_id="psn_x",
        sequence=2,
        reason="consent_withdrawn",
    )
    assert codec.decode(codec.encode(retracted))["reason"] == "consent_withdrawn"
