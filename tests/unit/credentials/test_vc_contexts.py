"""Pinned contexts: exact digests, and a loader that refuses everything else."""

from __future__ import annotations

import hashlib
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from ler.credentials import (
    CanonicalizationError,
    ContextNotPinnedError,
    OfflineDocumentLoader,
    default_loader,
)
from ler.credentials import canonize as canonize_doc
from ler.credentials.contexts import CREDENTIALS_V2, PINNED_CONTEXTS, load_context

pytestmark = pytest.mark.unit

CONTEXT_DIR = Path(__file__).resolve().parents[3] / "ler" / "credentials" / "contexts"


def _readme_digests() -> dict[str, str]:
    text = (CONTEXT_DIR / "README.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `([^`]+)` \| `([^`]+)` \|.*\| `([0-9a-f]{64})` \|$", text, re.M)
    return {file: digest for _url, file, digest in rows}


def test_every_pinned_file_matches_the_digest_recorded_in_the_readme() -> None:
    digests = _readme_digests()
    assert set(digests) == set(PINNED_CONTEXTS.values())
    for name, digest in digests.items():
        assert hashlib.sha256((CONTEXT_DIR / name).read_bytes()).hexdigest() == digest, name


def test_readme_lists_each_url_with_its_file() -> None:
    text = (CONTEXT_DIR / "README.md").read_text(encoding="utf-8")
    for url, name in PINNED_CONTEXTS.items():
        assert f"| `{url}` | `{name}` |" in text


def test_loader_serves_pinned_contexts() -> None:
    loader = OfflineDocumentLoader()
    remote = loader(CREDENTIALS_V2)
    assert remote["documentUrl"] == CREDENTIALS_V2
    assert remote["document"] == load_context(CREDENTIALS_V2)
    assert "@context" in remote["document"]


@pytest.mark.parametrize(
    "url",
    [
        "https://www.w3.org/ns/credentials/v3",
        "https://evil.example/context.json",
        "http://www.w3.org/ns/credentials/v2",
        "file:///etc/passwd",
    ],
)
def test_loader_refuses_any_other_url(url: str) -> None:
    with pytest.raises(ContextNotPinnedError) as caught:
        OfflineDocumentLoader()(url)
    assert url in str(caught.value)
    assert "never fetched" in str(caught.value)


def test_loaded_context_is_a_copy_callers_cannot_corrupt() -> None:
    loader = OfflineDocumentLoader()
    loader(CREDENTIALS_V2)["document"]["@context"]["VerifiableCredential"] = "x"
    assert loader(CREDENTIALS_V2)["document"]["@context"]["VerifiableCredential"] != "x"


def test_canonize_with_an_unpinned_context_names_it_and_fetches_nothing() -> None:
    document = {
        "@context": [CREDENTIALS_V2, "https://unknown.example/ctx.jsonld"],
        "type": "VerifiableCredential",
    }
    with pytest.raises(ContextNotPinnedError) as caught:
        canonize_doc(document)
    assert caught.value.url == "https://unknown.example/ctx.jsonld"


def test_extra_documents_are_served_by_a_test_loader() -> None:
    extra = {"https://test.example/ctx": {"@context": {"nick": "https://schema.org/alternateName"}}}
    loader = OfflineDocumentLoader(extra)
    document = {"@context": "https://test.example/ctx", "@id": "urn:x:1", "nick": "Pete"}
    assert (
        canonize_doc(document, loader) == '<urn:x:1> <https://schema.org/alternateName> "Pete" .\n'
    )
    with pytest.raises(ContextNotPinnedError):
        canonize_doc(document)


def test_safe_mode_refuses_a_property_the_context_does_not_define() -> None:
    document = {
        "@context": [CREDENTIALS_V2],
        "type": ["VerifiableCredential"],
        "issuer": "did:example:1",
        "credentialSubject": {"id": "did:example:2", "salary": "100000"},
    }
    with pytest.raises(CanonicalizationError, match="salary"):
        canonize_doc(document)


def test_safe_mode_refuses_an_undefined_type_and_a_relative_id() -> None:
    with pytest.raises(CanonicalizationError, match="MadeUpCredential"):
        canonize_doc(
            {
                "@context": [CREDENTIALS_V2],
                "type": ["VerifiableCredential", "MadeUpCredential"],
                "issuer": "did:example:1",
            }
        )
    with pytest.raises(CanonicalizationError, match="relative/1"):
        canonize_doc(
            {"@context": [CREDENTIALS_V2], "id": "relative/1", "type": ["VerifiableCredential"]}
        )


def test_each_thread_gets_its_own_default_loader() -> None:
    with ThreadPoolExecutor(max_workers=1) as pool:
        other = pool.submit(default_loader).result()
    assert default_loader() is default_loader()
    assert other is not default_loader()
