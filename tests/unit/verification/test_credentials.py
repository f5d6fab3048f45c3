"""The credentials the service issues: every term defined, signed, verifiable, tamper-evident."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ler.credentials import (
    Problem,
    StaticDidResolver,
    StaticStatusListFetcher,
    canonize,
    load_key_ring,
    verify_credential,
)
from ler.credentials.multikey import generate_key_file
from ler.skills import load_taxonomy
from services.verification.credentials import CredentialInput, Issuer, achievement_id

pytestmark = pytest.mark.unit
DID = "did:web:registry.test"


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> Issuer:
    keys: Path = tmp_path_factory.mktemp("keys")
    generate_key_file(keys / "key-1.json", f"{DID}#key-1", controller=DID)
    return Issuer(
        load_key_ring(keys),
        public_url="https://registry.test/",
        name="Registry",
        taxonomy=load_taxonomy(),
    )


def item(record_type: str, **data: object) -> CredentialInput:
    return CredentialInput(
        credential_id=str(uuid.uuid4()),
        record_id=str(uuid.uuid4()),
        person_id=str(uuid.uuid4()),
        record_type=record_type,
        data={"description": None, **data},
        organization_id=None if record_type == "credential" else str(uuid.uuid4()),
        organization_name=None if record_type == "credential" else "Sunny Days",
    )


def _title(problem: Problem | None) -> str | None:
    return problem.title if problem else None


ITEMS = {
    "employment": item(
        "employment",
        title="Lead Teacher",
        action="separated",
        start_date="2020-01-06",
        end_date="2024-06-30",
        soc_code="25-2011",
    ),
    "learning": item(
        "learning",
        title="Child Development Foundations",
        completed_on="2025-03-01",
        hours=12.0,
        competencies=["Child Development"],
    ),
    "credential": item(
        "credential",
        title="CPR",
        issued_on="2025-01-01",
        expires_on="2099-01-01",
        credential_type="CPR/First Aid",
    ),
}


@pytest.mark.parametrize("kind", sorted(ITEMS))
def test_issued_credentials_verify_and_any_change_to_the_subject_breaks_them(
    issuer: Issuer, kind: str
) -> None:
    credential = issuer.issue(ITEMS[kind], "1", 99)
    canonize({k: v for k, v in credential.items() if k != "proof"})  # safe mode: all terms defined
    assert (
        credential["credentialStatus"]["statusListCredential"]
        == "https://registry.test/v1/status-lists/1"
    )
    resolver = StaticDidResolver([issuer.ring.did_document()])
    lists = StaticStatusListFetcher([issuer.status_list("1", 131_072, [])])
    assert verify_credential(credential, resolver, lists).verified
    changed = {
        **credential,
        "credentialSubject": {
            **credential["credentialSubject"],
            "id": "urn:uuid:" + str(uuid.uuid4()),
        },
    }
    verdict = verify_credential(changed, resolver, lists)
    assert _title(verdict.check("proof").problem) == "Content changed after signing"
    revoked = StaticStatusListFetcher([issuer.status_list("1", 131_072, [99])])
    assert (
        _title(verify_credential(credential, resolver, revoked).check("status").problem)
        == "Revoked"
    )


def test_employment_subject_names_employer_role_soc_and_dates(issuer: Issuer) -> None:
    subject = issuer.issue(ITEMS["employment"], "1", 1)["credentialSubject"]
    assert subject["employer"]["name"] == "Sunny Days"
    assert (subject["role"], subject["socCode"]) == ("Lead Teacher", "25-2011")
    assert (subject["startDate"], subject["endDate"]) == ("2020-01-06", "2024-06-30")


def test_open_badges_carry_criteria_skills_alignment_and_expiry(issuer: Issuer) -> None:
    learning = issuer.issue(ITEMS["learning"], "1", 2, datetime(2026, 3, 1, tzinfo=UTC))
    assert learning["type"] == ["VerifiableCredential", "OpenBadgeCredential"]
    achievement = learning["credentialSubject"]["achievement"]
    assert "12 clock hours" in achievement["criteria"]["narrative"]
    assert [a["targetCode"] for a in achievement["alignment"]] == ["ler:ece.child-development"]
    assert learning["validFrom"] == "2026-03-01T00:00:00Z"
    credential = issuer.issue(ITEMS["credential"], "1", 3)
    assert credential["validUntil"] == "2099-01-01T23:59:59Z"
    assert credential["credentialSubject"]["achievement"]["achievementType"] == "Certificate"


def test_the_same_course_from_the_same_organization_is_one_achievement() -> None:
    org = str(uuid.uuid4())
    assert achievement_id(org, "learning", "CPR ") == achievement_id(org, "learning", "cpr")
    assert achievement_id(org, "learning", "CPR") != achievement_id(None, "learning", "CPR")
