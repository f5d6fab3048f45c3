"""Canonicalization with memoized context processing equals PyLD's own, document after document.

The memo keeps processed contexts across documents (see ``ler.credentials.jsonld._Processor``);
these tests interleave documents whose contexts differ, in value and in shape, and compare every
result with a fresh PyLD run that shares nothing."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pyld import jsonld  # type: ignore[import-untyped]

from ler.credentials.jsonld import CanonicalizationError, OfflineDocumentLoader, canonize
from ler.credentials.statuslist import StatusList, status_list_credential
from tests.unit.credentials.vc_fixtures import (
    NOW,
    REGISTRY_DID,
    employment_credential,
    open_badge_credential,
    vector_json,
)

pytestmark = pytest.mark.unit


def plain_pyld(document: dict[str, Any]) -> str:
    """PyLD's URDNA2015 with a new loader: no cache of any kind is shared with the memo."""
    result = jsonld.normalize(
        copy.deepcopy(document),
        {
            "algorithm": "URDNA2015",
            "format": "application/n-quads",
            "documentLoader": OfflineDocumentLoader(),
            "base": None,
        },
    )
    assert isinstance(result, str)
    return result


def with_inline_terms(document: dict[str, Any], iri: str) -> dict[str, Any]:
    changed = copy.deepcopy(document)
    changed["@context"] = [*changed["@context"], {"shift": iri}]
    changed["credentialSubject"]["shift"] = "night"
    return changed


def documents() -> list[dict[str, Any]]:
    unsigned = {k: v for k, v in vector_json("signedDataInt.json").items() if k != "proof"}
    employment = employment_credential()
    badge = open_badge_credential()
    return [
        unsigned,
        employment,
        badge,
        status_list_credential(
            "https://registry.example.org/v1/status-lists/1",
            REGISTRY_DID,
            StatusList(131_072),
            valid_from=NOW,
        ),
        with_inline_terms(employment, "https://example.org/vocab#shift"),
        # The same inline context text mapped elsewhere: a memo keyed by anything but the
        # context's value would reuse the first mapping here.
        with_inline_terms(employment, "https://example.org/other#shift"),
        with_inline_terms(badge, "https://example.org/vocab#shift"),
    ]


def test_every_document_canonicalizes_as_plain_pyld_does_in_any_order() -> None:
    docs = documents()
    expected = [plain_pyld(doc) for doc in docs]
    loader = OfflineDocumentLoader()
    for round_ in range(3):
        order = range(len(docs)) if round_ % 2 == 0 else reversed(range(len(docs)))
        for index in order:
            assert canonize(docs[index], loader) == expected[index], index
    assert len(loader.processed_contexts) > 0


def test_a_different_inline_context_gives_a_different_canonical_form() -> None:
    employment = employment_credential()
    loader = OfflineDocumentLoader()
    first = canonize(with_inline_terms(employment, "https://example.org/vocab#shift"), loader)
    second = canonize(with_inline_terms(employment, "https://example.org/other#shift"), loader)
    assert "<https://example.org/vocab#shift>" in first
    assert "<https://example.org/other#shift>" in second


def test_safe_mode_still_refuses_undefined_terms_once_contexts_are_memoized() -> None:
    loader = OfflineDocumentLoader()
    employment = employment_credential()
    canonize(employment, loader)
    sneaky = copy.deepcopy(employment)
    sneaky["credentialSubject"]["salary"] = 100_000
    with pytest.raises(CanonicalizationError, match="salary"):
        canonize(sneaky, loader)
