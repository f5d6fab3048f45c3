"""Issue 11, item 2: an organization's records about a person verify automatically only when the
organization is affiliated with that person, whatever the policy document says."""

from __future__ import annotations

import json
import uuid

import pytest

from services.verification.domain import (
    AUTO,
    REVIEW,
    UNAFFILIATED_RULE,
    RoutingSubject,
    parse_policy,
)
from services.verification.settings import DEFAULT_POLICY

pytestmark = pytest.mark.unit
DEFAULT = parse_policy(json.loads(DEFAULT_POLICY.read_text()))


@pytest.mark.parametrize(
    ("kind", "record_type"),
    [
        ("employer", "employment"),
        ("employer", "learning"),
        ("training_provider", "learning"),
        ("training_provider", "credential"),
    ],
)
def test_an_unaffiliated_organization_is_never_verified_automatically(
    kind: str, record_type: str
) -> None:
    org = str(uuid.uuid4())
    affiliated = RoutingSubject("organization", record_type, kind, org, affiliated=True)
    stranger = RoutingSubject("organization", record_type, kind, org)
    assert DEFAULT.route(affiliated).queue == AUTO
    routing = DEFAULT.route(stranger)
    assert (routing.queue, routing.rule) == (REVIEW, UNAFFILIATED_RULE)


def test_no_policy_document_can_auto_verify_an_unaffiliated_organization() -> None:
    org = str(uuid.uuid4())
    lax = parse_policy(
        {
            "rules": [{"organization_id": org, "route": "auto_verification"}],
            "default": "auto_verification",
        }
    )
    assert lax.route(RoutingSubject("organization", "learning", "employer", org)).queue == REVIEW
    assert lax.route(RoutingSubject("organization", "learning", "partner")).queue == REVIEW
    with_affiliation = RoutingSubject("organization", "learning", "employer", org, affiliated=True)
    assert lax.route(with_affiliation).queue == AUTO
