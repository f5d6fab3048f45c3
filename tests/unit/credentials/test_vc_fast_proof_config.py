"""The proof configuration's canonical form without PyLD equals PyLD's, or is not used."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from ler.credentials.contexts import CREDENTIALS_V2, OPEN_BADGES_V3
from ler.credentials.dataintegrity import canonical_assertion_proof_config
from ler.credentials.jsonld import canonize

pytestmark = pytest.mark.unit

CONTEXTS: list[Any] = [
    CREDENTIALS_V2,
    [CREDENTIALS_V2],
    [CREDENTIALS_V2, OPEN_BADGES_V3],
    [CREDENTIALS_V2, {"employer": "https://schema.org/worksFor", "@vocab": "urn:ler:vocab#"}],
]
CREATED = ["2023-02-24T23:36:38Z", "2026-11-22T09:00:00.123456Z", "2026-11-22T09:00:00+02:00"]
METHODS = [
    "did:key:z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2#z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2",
    "did:web:127.0.0.1%3A8002#key-1",
    "https://registry.example.org/keys/1",
]


@pytest.mark.parametrize(
    ("context", "created", "method"), list(itertools.product(CONTEXTS, CREATED, METHODS))
)
def test_the_fast_form_equals_the_full_canonicalization(
    context: Any, created: str, method: str
) -> None:
    config = {
        "@context": context,
        "type": "DataIntegrityProof",
        "cryptosuite": "eddsa-rdfc-2022",
        "created": created,
        "verificationMethod": method,
        "proofPurpose": "assertionMethod",
    }
    fast = canonical_assertion_proof_config(config)
    assert fast is not None
    assert fast == canonize(config)


BASE = {
    "@context": [CREDENTIALS_V2],
    "type": "DataIntegrityProof",
    "cryptosuite": "eddsa-rdfc-2022",
    "created": "2026-01-01T00:00:00Z",
    "verificationMethod": "did:web:example.org#key-1",
    "proofPurpose": "assertionMethod",
}


@pytest.mark.parametrize(
    "change",
    [
        {"proofPurpose": "authentication"},
        {"challenge": "abc"},
        {"domain": "example.org"},
        {"expires": "2027-01-01T00:00:00Z"},
        {"@context": ["https://www.w3.org/2018/credentials/v1"]},
        {"created": "yesterday"},
        {"verificationMethod": "key-1"},
        {"verificationMethod": "did:web:example.org#a b"},
        {"cryptosuite": "ecdsa-rdfc-2019"},
    ],
)
def test_other_shapes_take_the_full_path(change: dict[str, Any]) -> None:
    assert canonical_assertion_proof_config({**BASE, **change}) is None
