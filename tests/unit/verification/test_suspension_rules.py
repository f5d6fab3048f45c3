"""Suspension without I/O: who can be put on hold, the wallet's status, notices and webhooks."""

from __future__ import annotations

import itertools
import json
import uuid
from typing import Any

import pytest

from ler.envelope import event, new_envelope
from services.notifications.domain import (
    NOTICE_KINDS,
    ORGANIZATION_EVENT_TYPES,
    REQUIRED_NOTICES,
    Notice,
    WebhookEvent,
    notification_changes,
)
from services.notifications.feed import LEFT_OUT, STATUS_EVENTS
from services.verification.domain import TransitionError, appeal_of, check_revocation
from services.verification.suspension_rules import check_suspension_change
from services.wallet.domain import VERIFICATION_EVENTS, record_status

pytestmark = pytest.mark.unit
PERSON, ORG = str(uuid.uuid4()), str(uuid.uuid4())
VERIFIED = (
    1,
    "RecordVerified",
    "t1",
    {"credential_id": "c", "credential": json.dumps({"id": "urn:uuid:c"})},
)
SUSPENDED = (2, "CredentialSuspended", "t2", {"credential_id": "c", "reason_code": "disputed"})
LIFTED = (3, "CredentialSuspensionLifted", "t3", {"credential_id": "c", "reason_code": "other"})


def refused(*args: Any) -> TransitionError:
    with pytest.raises(TransitionError) as caught:
        check_suspension_change(*args)
    return caught.value


def test_only_a_credential_in_force_is_suspended_and_only_a_suspended_one_lifted() -> None:
    check_suspension_change(True, "disputed", "verified", False, True, True)
    check_suspension_change(False, "investigation_closed", "suspended", False, True, True)
    assert refused(True, "disputed", "suspended", False, True, True).status == 409
    assert refused(False, "other", "verified", False, True, True).status == 409
    assert refused(True, "disputed", None, False, False, False).status == 404
    unknown = refused(True, "because", "verified", False, True, True)
    assert (unknown.status, unknown.field) == (422, "reason_code")
    assert refused(True, "disputed", "verified", False, True, False).status == 409


@pytest.mark.parametrize(
    ("state", "revoked", "current"),
    [("revoked", True, True), ("verified", True, False), ("revoked", False, True)],
    ids=["revoked", "replaced-by-an-appeal", "record-revoked"],
)
@pytest.mark.parametrize("suspend", [True, False], ids=["suspend", "lift"])
def test_a_revoked_credential_is_never_suspended_or_lifted(
    state: str, revoked: bool, current: bool, suspend: bool
) -> None:
    code = "disputed" if suspend else "investigation_closed"
    error = refused(suspend, code, state, revoked, current, True)
    assert (error.status, error.field) == (409, "credential_id")
    assert "final" in error.message


def test_a_suspension_can_be_appealed_and_a_suspended_credential_revoked() -> None:
    assert appeal_of("suspended") == "suspension"
    check_revocation("suspended", "", None, True)


def test_the_wallet_shows_a_suspension_and_its_lifting_in_any_arrival_order() -> None:
    held = record_status([VERIFIED, SUSPENDED])
    assert held["status"] == "suspended"
    assert held["suspension"]["reason_code"] == "disputed"
    assert held["credential_id"] == "c"
    for order in itertools.permutations([VERIFIED, SUSPENDED, LIFTED]):
        lifted = record_status(list(order))
        assert lifted["status"] == "verified"
        assert "suspension" not in lifted
    revoked = (4, "CredentialRevoked", "t4", {"credential_id": "c", "reason": "wrong"})
    late_lift = (5, *LIFTED[1:])
    assert record_status([VERIFIED, SUSPENDED, revoked, late_lift])["status"] == "revoked"
    assert {"CredentialSuspended", "CredentialSuspensionLifted"} <= VERIFICATION_EVENTS


def decision(event_type: str, **fields: Any) -> dict[str, Any]:
    return event(
        new_envelope(event_type, "verification"),
        person_id=PERSON,
        record_id=str(uuid.uuid4()),
        organization_id=ORG,
        record_type="learning",
        credential_id="c-1",
        **fields,
    )


@pytest.mark.parametrize(
    ("event_type", "kind"),
    [
        ("CredentialSuspended", "credential.suspended"),
        ("CredentialSuspensionLifted", "credential.suspension_lifted"),
    ],
)
def test_suspension_events_become_a_notice_and_a_webhook(event_type: str, kind: str) -> None:
    record = decision(event_type, reason_code="disputed", note="Ada's certificate")
    notice, webhook = notification_changes(event_type, record, PERSON.encode())
    assert isinstance(notice, Notice)
    assert notice.kind == kind
    assert isinstance(webhook, WebhookEvent)
    assert webhook.event_type == kind
    assert webhook.data["reason_code"] == "disputed"
    assert "note" not in webhook.data
    assert kind in NOTICE_KINDS
    assert kind in ORGANIZATION_EVENT_TYPES
    assert "credential.suspended" in REQUIRED_NOTICES  # due process: told, with how to appeal


def test_a_suspended_record_leaves_the_partner_feed_until_lifted() -> None:
    assert STATUS_EVENTS["CredentialSuspended"] in LEFT_OUT
    assert STATUS_EVENTS["CredentialSuspensionLifted"] not in LEFT_OUT
