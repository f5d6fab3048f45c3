"""did:key, did:web documents, key rings and rotation, verification method dereferencing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ler.credentials import (
    KeyFileError,
    KeyResolutionError,
    PublicKey,
    SigningKey,
    StaticDidResolver,
    build_did_web_document,
    did_key_document,
    did_web_document_url,
    did_web_from_url,
    load_key_ring,
    resolve_verification_method,
)
from ler.credentials.keygen import main as keygen_main

from .vc_fixtures import REGISTRY_DID, registry_key

pytestmark = pytest.mark.unit

VECTOR_PUBLIC = "z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2"


def test_did_key_resolves_from_the_identifier_alone() -> None:
    did = f"did:key:{VECTOR_PUBLIC}"
    key = resolve_verification_method(f"{did}#{VECTOR_PUBLIC}", None, "assertionMethod")
    assert key.multibase == VECTOR_PUBLIC
    assert key.controller == did
    document = did_key_document(did)
    assert document["assertionMethod"] == [f"{did}#{VECTOR_PUBLIC}"]


def test_did_key_with_a_foreign_fragment_is_refused() -> None:
    with pytest.raises(KeyResolutionError, match="does not publish"):
        resolve_verification_method(f"did:key:{VECTOR_PUBLIC}#other", None, "assertionMethod")


def test_did_key_of_another_key_type_is_refused() -> None:
    with pytest.raises(KeyResolutionError, match="Ed25519"):
        resolve_verification_method(
            "did:key:zDnaegE6RR3atJtHKwTRTWHsJ3kNHqFwv7n9YjTgmU7TyfU76#x", None, "assertionMethod"
        )


@pytest.mark.parametrize(
    ("url", "did", "document_url"),
    [
        (
            "https://registry.example.org",
            "did:web:registry.example.org",
            "https://registry.example.org/.well-known/did.json",
        ),
        (
            "https://localhost:8443/",
            "did:web:localhost%3A8443",
            "https://localhost:8443/.well-known/did.json",
        ),
        (
            "https://example.org/issuers/ler",
            "did:web:example.org:issuers:ler",
            "https://example.org/issuers/ler/did.json",
        ),
    ],
)
def test_did_web_identifiers(url: str, did: str, document_url: str) -> None:
    assert did_web_from_url(url) == did
    assert did_web_document_url(did) == document_url


def test_did_web_document_lists_every_key_for_assertion_and_authentication() -> None:
    keys: list[PublicKey | SigningKey] = [registry_key(1).public_key, registry_key(2)]
    document = build_did_web_document(REGISTRY_DID, keys)
    ids = [f"{REGISTRY_DID}#key-1", f"{REGISTRY_DID}#key-2"]
    assert document["@context"] == [
        "https://www.w3.org/ns/did/v1",
        "https://w3id.org/security/multikey/v1",
    ]
    assert [m["id"] for m in document["verificationMethod"]] == ids
    assert all(m["type"] == "Multikey" for m in document["verificationMethod"])
    assert all("secretKeyMultibase" not in m for m in document["verificationMethod"])
    assert document["assertionMethod"] == ids
    assert document["authentication"] == ids


def test_did_web_document_refuses_a_key_of_another_controller() -> None:
    stranger = SigningKey.generate("did:web:other.example#key-1", "did:web:other.example")
    with pytest.raises(ValueError, match="not controlled"):
        build_did_web_document(REGISTRY_DID, [stranger])


def test_rotated_ring_keeps_old_keys_resolvable(tmp_path: Path) -> None:
    assert keygen_main(["--did", REGISTRY_DID, "--dir", str(tmp_path)]) == 0
    assert keygen_main(["--did", REGISTRY_DID, "--dir", str(tmp_path), "--retire-old"]) == 0
    assert "secretKeyMultibase" not in json.loads((tmp_path / "key-1.json").read_text())
    ring = load_key_ring(tmp_path)
    assert ring.signing_key.id == f"{REGISTRY_DID}#key-2"
    assert isinstance(ring.keys[0], PublicKey)
    resolver = StaticDidResolver([ring.did_document()])
    old = resolve_verification_method(f"{REGISTRY_DID}#key-1", resolver, "assertionMethod")
    assert old.raw == ring.keys[0].raw


def test_key_ring_orders_by_key_number_not_file_name(tmp_path: Path) -> None:
    for n in (2, 10, 9):
        key = registry_key(n)
        (tmp_path / f"{n:02d}-{n}.json").write_text(json.dumps(key.to_key_file()))
    ring = load_key_ring(tmp_path)
    assert [k.id for k in ring.keys] == [f"{REGISTRY_DID}#key-{n}" for n in (2, 9, 10)]
    assert ring.signing_key.id == f"{REGISTRY_DID}#key-10"


def test_key_ring_problems_are_named(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="not found"):
        load_key_ring(tmp_path / "absent")
    with pytest.raises(KeyFileError, match=r"no \*\.json"):
        load_key_ring(tmp_path)
    public = registry_key(1).to_key_file()
    del public["secretKeyMultibase"]
    (tmp_path / "key-1.json").write_text(json.dumps(public))
    with pytest.raises(KeyFileError, match="secretKeyMultibase"):
        _ = load_key_ring(tmp_path).signing_key
    other = SigningKey.generate("did:web:other.example#key-2", "did:web:other.example")
    (tmp_path / "key-2.json").write_text(json.dumps(other.to_key_file()))
    with pytest.raises(KeyFileError, match="different controllers"):
        load_key_ring(tmp_path)


def _resolver(**changes: object) -> StaticDidResolver:
    document = build_did_web_document(REGISTRY_DID, [registry_key(1)])
    document.update(changes)
    return StaticDidResolver([document])


def test_resolution_failures_read_plainly() -> None:
    method = f"{REGISTRY_DID}#key-1"
    with pytest.raises(KeyResolutionError) as caught:
        resolve_verification_method(method, StaticDidResolver(), "assertionMethod")
    assert caught.value.title == "Issuer's keys not found"
    with pytest.raises(KeyResolutionError) as caught:
        resolve_verification_method(f"{REGISTRY_DID}#key-7", _resolver(), "assertionMethod")
    assert caught.value.title == "Signing key not published"
    with pytest.raises(KeyResolutionError) as caught:
        resolve_verification_method(method, _resolver(assertionMethod=[]), "assertionMethod")
    assert caught.value.title == "Key not allowed for this use"
    with pytest.raises(KeyResolutionError) as caught:
        resolve_verification_method("no-fragment", _resolver(), "assertionMethod")
    assert caught.value.title == "Signing key not identified"


def test_relative_references_in_a_did_document_resolve() -> None:
    key = registry_key(1).public_key
    document = {
        "id": REGISTRY_DID,
        "verificationMethod": [
            {
                "id": "#key-1",
                "type": "Multikey",
                "controller": REGISTRY_DID,
                "publicKeyMultibase": key.multibase,
            }
        ],
        "assertionMethod": ["#key-1"],
    }
    found = resolve_verification_method(
        f"{REGISTRY_DID}#key-1", StaticDidResolver([document]), "assertionMethod"
    )
    assert found.raw == key.raw


def test_keygen_prints_the_public_key_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert keygen_main(["--did", REGISTRY_DID, "--dir", str(tmp_path / "ring")]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["id"] == f"{REGISTRY_DID}#key-1"
    assert printed["publicKeyMultibase"].startswith("z6Mk")
    assert "secretKeyMultibase" not in printed
    stored = load_key_ring(tmp_path / "ring").signing_key
    assert stored.public_key.multibase == printed["publicKeyMultibase"]
