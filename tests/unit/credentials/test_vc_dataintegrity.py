"""Creating and checking eddsa-rdfc-2022 proofs on platform-shaped credentials."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

import pytest

from ler.credentials import ProofError, add_proof, create_proof, signing_input, verify_proof

from .vc_fixtures import employment_credential, open_badge_credential, registry_key, signed

pytestmark = pytest.mark.unit


def test_proof_shape() -> None:
    credential = signed(employment_credential())
    proof = credential["proof"]
    assert proof["type"] == "DataIntegrityProof"
    assert proof["cryptosuite"] == "eddsa-rdfc-2022"
    assert proof["verificationMethod"] == "did:web:registry.example.org#key-1"
    assert proof["proofPurpose"] == "assertionMethod"
    assert proof["created"] == "2026-01-15T10:00:00Z"
    assert proof["proofValue"].startswith("z")


def test_created_defaults_to_now_in_utc_seconds() -> None:
    proof = create_proof(employment_credential(), registry_key())
    created = datetime.strptime(proof["created"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert abs((datetime.now(UTC) - created).total_seconds()) < 5


@pytest.mark.parametrize("make", [employment_credential, open_badge_credential])
def test_round_trip_and_any_subject_change_breaks_it(make: object) -> None:
    assert callable(make)
    credential = signed(make())
    key = registry_key().public_key
    assert verify_proof(credential, credential["proof"], key)
    changed = copy.deepcopy(credential)
    changed["credentialSubject"]["id"] = changed["credentialSubject"]["id"][:-1] + "2"
    assert not verify_proof(changed, changed["proof"], key)


def test_changing_the_proof_options_breaks_it() -> None:
    credential = signed(employment_credential())
    proof = dict(credential["proof"], created="2026-01-15T10:00:01Z")
    assert not verify_proof(credential, proof, registry_key().public_key)


def test_key_order_and_whitespace_do_not_matter() -> None:
    credential = signed(employment_credential())
    reordered = dict(reversed(list(credential.items())))
    assert verify_proof(reordered, reordered["proof"], registry_key().public_key)


def test_another_key_does_not_verify() -> None:
    credential = signed(employment_credential())
    assert not verify_proof(credential, credential["proof"], registry_key(2).public_key)


def test_document_hash_ignores_the_proof_but_config_hash_covers_the_context() -> None:
    credential = signed(employment_credential())
    unsigned = employment_credential()
    a = signing_input(credential, credential["proof"])
    b = signing_input(unsigned, credential["proof"])
    assert a.document_hash == b.document_hash
    assert "credentials#" not in a.canonical_proof_config
    assert "DataIntegrityProof" in a.canonical_proof_config


def test_malformed_proofs_raise_proof_error() -> None:
    credential = signed(employment_credential())
    key = registry_key().public_key
    for change, message in [
        ({"proofValue": "u" + "A" * 86}, "base58btc"),
        ({"proofValue": "z3"}, "64-byte"),
        ({"cryptosuite": "eddsa-jcs-2022"}, "cryptosuite"),
        ({"type": "Ed25519Signature2020"}, "proof type"),
        ({"created": "yesterday"}, "dateTime"),
    ]:
        with pytest.raises(ProofError, match=message):
            verify_proof(credential, dict(credential["proof"], **change), key)
    without_value = {k: v for k, v in credential["proof"].items() if k != "proofValue"}
    with pytest.raises(ProofError, match="no proofValue"):
        verify_proof(credential, without_value, key)


def test_add_proof_refuses_a_second_proof() -> None:
    with pytest.raises(ProofError, match="already has a proof"):
        add_proof(signed(employment_credential()), registry_key(2))


def test_add_proof_does_not_mutate_the_input() -> None:
    unsigned = employment_credential()
    before = copy.deepcopy(unsigned)
    add_proof(unsigned, registry_key())
    assert unsigned == before
