"""Credentials the verification service issues verify with the independent verifier.

Employment credentials (inline context), Open Badges 3.0 with skills alignment, and a credential
with two status list entries (revocation and suspension), signed by the service's :class:`Issuer` with a did:web key ring; each
fails there after one byte of its subject changes.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ler.credentials import load_key_ring
from ler.credentials.multikey import generate_key_file
from ler.skills import load_taxonomy
from services.verification.credentials import CredentialInput, Issuer
from tests.interop.test_js_verifier import _run, node  # noqa: F401  (node is a fixture)

pytestmark = pytest.mark.integration
DID = "did:web:registry.example.org"


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> Issuer:
    keys = tmp_path_factory.mktemp("keys")
    generate_key_file(keys / "key-1.json", f"{DID}#key-1", controller=DID)
    return Issuer(
        load_key_ring(keys),
        public_url="https://registry.example.org",
        name="Workforce Registry",
        taxonomy=load_taxonomy(),
    )


def _item(record_type: str, data: dict[str, Any]) -> CredentialInput:
    return CredentialInput(
        credential_id=str(uuid.uuid4()),
        record_id=str(uuid.uuid4()),
        person_id=str(uuid.uuid4()),
        record_type=record_type,
        data=data,
        organization_id=str(uuid.uuid4()),
        organization_name="Sunny Days Child Care",
    )


EMPLOYMENT = _item(
    "employment",
    {
        "title": "Lead Teacher",
        "action": "hired",
        "start_date": "2024-08-15",
        "end_date": None,
        "soc_code": "25-2011",
    },
)
LEARNING = _item(
    "learning",
    {
        "title": "Child Development Foundations",
        "completed_on": "2025-03-01",
        "hours": 12.0,
        "competencies": ["Child Development"],
        "description": None,
    },
)


def _changed(credential: dict[str, Any]) -> dict[str, Any]:
    changed: dict[str, Any] = json.loads(json.dumps(credential))
    subject = changed["credentialSubject"]
    if "role" in subject:
        subject["role"] = subject["role"][:-1] + "R"
    else:
        subject["achievement"]["name"] = subject["achievement"]["name"][:-1] + "S"
    return changed


@pytest.mark.parametrize("item", [EMPLOYMENT, LEARNING], ids=["employment", "open-badge"])
def test_issued_credentials_verify_independently_and_fail_when_changed(
    node: str,  # noqa: F811
    issuer: Issuer,
    tmp_path: Path,
    item: CredentialInput,
) -> None:
    # The harness verifies "now" = 2026-03-01 (its NOW); issue before that.
    issued = datetime(2026, 1, 15, 9, 30, tzinfo=UTC)
    # Two status entries, as the registry issues: revocation in list 1, suspension in list 2.
    credential = issuer.issue(item, "1", 4242, issued, suspension=("2", 99))
    if item.record_type == "learning":
        assert credential["credentialSubject"]["achievement"]["alignment"]
    url, held_url = (e["statusListCredential"] for e in credential["credentialStatus"])
    clear = issuer.status_list("2", 131_072, [7], issued, purpose="suspension")
    in_force = {url: issuer.status_list("1", 131_072, [7], issued), held_url: clear}
    did_document = issuer.ring.did_document()
    result = _run(node, credential, [did_document], tmp_path, in_force)
    assert result["verified"], result["errors"]

    result = _run(node, _changed(credential), [did_document], tmp_path, in_force)
    assert not result["verified"]
    assert any("signature" in error.lower() for error in result["errors"]), result["errors"]

    held = {
        **in_force,
        held_url: issuer.status_list("2", 131_072, [99], issued, purpose="suspension"),
    }
    result = _run(node, credential, [did_document], tmp_path, held)
    assert not result["verified"]
    # The harness names the purpose of the bit that is set.
    assert any("(suspension)" in error for error in result["errors"]), result["errors"]

    revoked = {**in_force, url: issuer.status_list("1", 131_072, [7, 4242], issued)}
    result = _run(node, credential, [did_document], tmp_path, revoked)
    assert not result["verified"]
    assert any("revoked" in error for error in result["errors"]), result["errors"]
