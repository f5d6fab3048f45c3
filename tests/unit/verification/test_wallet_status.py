"""The wallet's record status folds verification transitions by version, whatever their order."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

from services.wallet.domain import record_status

pytestmark = pytest.mark.unit

CREDENTIAL = {"id": "urn:uuid:c", "type": ["VerifiableCredential"]}
HISTORY: list[tuple[int, str, str, dict[str, Any]]] = [
    (1, "RecordQueuedForReview", "t1", {"queue": "manual_review"}),
    (2, "RecordRejected", "t2", {"reason_code": "duplicate", "note": "seen"}),
    (3, "AppealFiled", "t3", {"appeal_id": "a", "appeal_of": "rejection"}),
    (4, "AppealDecided", "t4", {"appeal_id": "a", "appeal_of": "rejection", "decision": "upheld"}),
    (
        5,
        "RecordVerified",
        "t5",
        {
            "credential_id": "c",
            "credential_type": "EmploymentCredential",
            "credential": json.dumps(CREDENTIAL),
        },
    ),
    (6, "CredentialRevoked", "t6", {"credential_id": "c", "reason": "wrong person"}),
]


def test_statuses_along_the_way() -> None:
    assert record_status([]) == {"status": "submitted"}
    assert record_status(HISTORY[:1])["status"] == "in_review"
    rejected = record_status(HISTORY[:2])
    assert rejected["status"] == "rejected"
    assert rejected["rejection"]["reason_code"] == "duplicate"
    appealed = record_status(HISTORY[:3])
    assert (appealed["status"], appealed["appeal"]["state"]) == ("rejected", "pending")
    verified = record_status(HISTORY[:5])
    assert verified["status"] == "verified"
    assert verified["credential"] == CREDENTIAL
    assert verified["appeal"]["state"] == "upheld"
    assert "rejection" not in verified
    revoked = record_status(HISTORY)
    assert revoked["status"] == "revoked"
    assert revoked["revocation"]["reason"] == "wrong person"
    reinstated = record_status(
        [*HISTORY, (7, "CredentialReinstated", "t7", {"credential_id": "c"})]
    )
    assert reinstated["status"] == "verified"
    assert "revocation" not in reinstated
    # Since revocation is final, an upheld appeal of it issues a new credential instead.
    reissued = record_status(
        [*HISTORY, (7, "RecordVerified", "t7", {"credential_id": "c2", "credential": "{}"})]
    )
    assert (reissued["status"], reissued["credential_id"]) == ("verified", "c2")
    assert "revocation" not in reissued


def test_any_arrival_order_gives_the_same_status() -> None:
    expected = record_status(HISTORY)
    for order in itertools.islice(itertools.permutations(HISTORY), 0, None, 37):
        assert record_status(list(order)) == expected
