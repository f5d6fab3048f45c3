"""The W3C vc-di-eddsa eddsa-rdfc-2022 test vectors, reproduced byte for byte."""

from __future__ import annotations

import pytest

from ler.credentials import (
    PublicKey,
    SigningKey,
    StaticDidResolver,
    canonize,
    create_proof,
    signing_input,
    verify_credential,
    verify_proof,
)
from ler.credentials.multibase import encode_base58btc
from ler.credentials.multikey import decode_secret_key

from .vc_fixtures import NOW, vector_json, vector_text

pytestmark = pytest.mark.unit

ISSUER = "https://vc.example/issuers/5678"


def _key() -> SigningKey:
    pair = vector_json("keyPair.json")
    method = f"{ISSUER}#{pair['publicKeyMultibase']}"
    return SigningKey.from_multibase(pair["privateKeyMultibase"], id=method, controller=ISSUER)


def _unsigned() -> dict[str, object]:
    document = vector_json("signedDataInt.json")
    del document["proof"]
    return document


def _proof_options() -> dict[str, object]:
    config = vector_json("proofConfigDataInt.json")
    del config["@context"]
    return config


def test_secret_key_derives_the_published_public_key() -> None:
    pair = vector_json("keyPair.json")
    assert len(decode_secret_key(pair["privateKeyMultibase"])) == 32
    assert _key().public_key.multibase == pair["publicKeyMultibase"]


def test_canonical_document_matches_the_vector_byte_for_byte() -> None:
    assert canonize(_unsigned()) == vector_text("canonDocDataInt.txt")


def test_canonical_proof_configuration_matches_the_vector() -> None:
    assert canonize(vector_json("proofConfigDataInt.json")) == vector_text("proofCanonDataInt.txt")


def test_hashes_match_the_vectors() -> None:
    data = signing_input(_unsigned(), _proof_options())
    assert data.canonical_proof_config == vector_text("proofCanonDataInt.txt")
    assert data.canonical_document == vector_text("canonDocDataInt.txt")
    assert data.proof_config_hash.hex() == vector_text("proofHashDataInt.txt")
    assert data.hash_data.hex() == vector_text("combinedHashDataInt.txt")
    assert data.document_hash.hex() == vector_text("combinedHashDataInt.txt")[64:]


def test_signature_and_proof_value_match_the_vectors() -> None:
    proof = create_proof(_unsigned(), _key(), created="2023-02-24T23:36:38Z")
    assert _key().sign(signing_input(_unsigned(), proof).hash_data).hex() == vector_text(
        "sigHexDataInt.txt"
    )
    assert proof["proofValue"] == vector_text("sigBTC58DataInt.txt")
    assert proof["proofValue"] == encode_base58btc(bytes.fromhex(vector_text("sigHexDataInt.txt")))
    assert proof == vector_json("signedDataInt.json")["proof"]


def test_published_signed_credential_verifies() -> None:
    signed = vector_json("signedDataInt.json")
    key = PublicKey.from_multibase(vector_json("keyPair.json")["publicKeyMultibase"])
    assert verify_proof(signed, signed["proof"], key)


def test_published_credential_verifies_end_to_end_with_its_issuer_document() -> None:
    pair = vector_json("keyPair.json")
    method = f"{ISSUER}#{pair['publicKeyMultibase']}"
    issuer_document = {
        "id": ISSUER,
        "verificationMethod": [
            {
                "id": method,
                "type": "Multikey",
                "controller": ISSUER,
                "publicKeyMultibase": pair["publicKeyMultibase"],
            }
        ],
        "assertionMethod": [method],
    }
    verdict = verify_credential(
        vector_json("signedDataInt.json"), StaticDidResolver([issuer_document]), now=NOW
    )
    assert verdict.verified, verdict.to_dict()


def test_changed_vector_subject_fails() -> None:
    signed = vector_json("signedDataInt.json")
    signed["credentialSubject"]["alumniOf"] = "The School of Examplez"
    key = PublicKey.from_multibase(vector_json("keyPair.json")["publicKeyMultibase"])
    assert not verify_proof(signed, signed["proof"], key)
