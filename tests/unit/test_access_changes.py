"""The kit's access changes (issue 11, item 8): which enrollment events replace a credential."""

from __future__ import annotations

import uuid

import pytest

from ler.access import AccessChanged, access_change
from services.notifications.feed import next_pseudonym, pseudonymous_id

pytestmark = pytest.mark.unit


def test_a_token_reset_and_a_key_change_are_access_changes_and_nothing_else_is() -> None:
    person, org = uuid.uuid4(), uuid.uuid4()
    reset = {"person_id": person, "access_token_sha256": "d" * 64}
    rotated = {"organization_id": org, "api_key_sha256": "e" * 64, "changed_by": "organization"}
    revoked = {"organization_id": org, "api_key_sha256": None, "changed_by": "admin"}
    assert access_change("PersonAccessTokenReset", reset) == AccessChanged(
        "person", str(person), "d" * 64
    )
    assert access_change("OrganizationApiKeyChanged", rotated) == AccessChanged(
        "organization", str(org), "e" * 64
    )
    assert access_change("OrganizationApiKeyChanged", revoked) == AccessChanged(
        "organization", str(org), None
    )
    assert access_change("PersonEnrolled", reset) is None


def test_consent_given_again_gets_a_new_stable_pseudonym() -> None:
    secret, partner, person = b"s" * 32, str(uuid.uuid4()), str(uuid.uuid4())
    first = pseudonymous_id(secret, partner, person)
    second = next_pseudonym(secret, partner, person, first)
    assert second.startswith("psn_")
    assert second != first
    assert second == next_pseudonym(secret, partner, person, first)  # a replay gives the same
    assert next_pseudonym(secret, partner, person, second) not in {first, second}
