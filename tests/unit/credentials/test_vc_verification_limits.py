"""Bounded canonicalization (RDFC-1.0 with rdf-canonize's work factor, a permutation cap and a
deadline), the document limits checked before any JSON-LD work, and issuer trust in verdicts."""

from __future__ import annotations

import time
from typing import Any

import pytest

from ler.credentials import (
    TooComplexError,
    TrustedIssuer,
    TrustList,
    assess_issuer,
    canonize,
    verify_credential,
    with_issuer_trust,
)
from ler.credentials.canon import CanonicalizationLimits, deadline
from ler.credentials.contexts import CREDENTIALS_V2, OPEN_BADGES_V3
from ler.credentials.did import StaticDidResolver
from ler.credentials.limits import DocumentLimits, LimitProblem, document_problem
from tests.unit.credentials.vc_fixtures import (
    NOW,
    REGISTRY_DID,
    employment_credential,
    open_badge_credential,
    registry_key,
    signed,
)

pytestmark = pytest.mark.unit


def poison_graph(nodes: int) -> dict[str, Any]:
    return {
        "@context": [CREDENTIALS_V2, {"knows": "urn:example:knows"}],
        "type": ["VerifiableCredential"],
        "issuer": "did:example:x",
        "credentialSubject": [
            {"id": f"_:b{i}", "knows": [{"id": f"_:b{j}"} for j in range(nodes) if j != i]}
            for i in range(nodes)
        ],
    }


@pytest.mark.parametrize("nodes", [2, 3, 7, 8, 12, 40])
def test_a_poison_graph_is_refused_in_milliseconds(nodes: int) -> None:
    # Unbounded, 7 nodes took 4.8 s and 8 nodes 46 s here.
    started = time.perf_counter()
    with pytest.raises(TooComplexError) as caught:
        canonize(poison_graph(nodes))
    assert time.perf_counter() - started < 0.2
    assert not caught.value.timed_out
    assert "too complex" in str(caught.value)


def test_look_alike_blank_nodes_within_the_work_factor_still_canonicalize() -> None:
    # Two identical alignments: blank nodes the first-degree hashes cannot tell apart, but no
    # cycle between them; rdf-canonize (maxWorkFactor 1) accepts this, and so must we.
    badge = open_badge_credential()
    alignment = {"type": ["Alignment"], "targetName": "Same", "targetUrl": "https://x.example"}
    badge["credentialSubject"]["achievement"]["alignment"] = [alignment, dict(alignment)]
    badge["@context"] = [CREDENTIALS_V2, OPEN_BADGES_V3]
    assert "_:c14n" in canonize(badge)


def test_the_deadline_stops_a_canonicalization() -> None:
    with deadline(0.0), pytest.raises(TooComplexError) as caught:
        canonize(employment_credential())
    assert caught.value.timed_out
    assert canonize(employment_credential())  # no deadline outside the block


def test_limits_have_the_documented_defaults() -> None:
    assert CanonicalizationLimits() == CanonicalizationLimits(
        max_blank_nodes=2_000, max_statements=20_000, work_factor=1, max_permutations=10_000
    )
    assert DocumentLimits() == DocumentLimits(
        max_bytes=256 * 1024, max_depth=32, max_values=20_000, max_credentials=50
    )


def test_document_limits_name_the_field_and_the_rule() -> None:
    limits = DocumentLimits(max_depth=4, max_values=50, max_credentials=2)
    assert document_problem(employment_credential(), DocumentLimits()) is None
    deep: dict[str, Any] = {"a": {"b": {"c": {"d": 1}}}}
    assert document_problem(deep, limits) is None
    deep["a"]["b"]["c"]["d"] = {"e": 1}
    assert document_problem(deep, limits) == LimitProblem("body", "nested at most 4 levels deep")
    assert document_problem({"x": list(range(60))}, limits) == LimitProblem(
        "body", "at most 50 JSON values"
    )
    presentation = {"type": "VerifiablePresentation", "verifiableCredential": [{}, {}, {}]}
    assert document_problem(presentation, limits) == LimitProblem(
        "verifiableCredential", "at most 2 credentials"
    )
    assert document_problem({"presentation": presentation}, limits) == LimitProblem(
        "presentation.verifiableCredential", "at most 2 credentials"
    )
    # Iterative: any depth is measured without recursion.
    nested: Any = []
    for _ in range(100_000):
        nested = [nested]
    assert document_problem(nested, limits) == LimitProblem("body", "nested at most 4 levels deep")


TRUST = TrustList([TrustedIssuer(REGISTRY_DID, "Workforce Registry")])


def test_issuer_trust_for_a_listed_an_unlisted_and_an_impersonating_issuer() -> None:
    listed = assess_issuer({"issuer": REGISTRY_DID}, TRUST)
    assert (listed.id, listed.trusted, listed.name, listed.warning) == (
        REGISTRY_DID,
        True,
        "Workforce Registry",
        None,
    )
    stranger = assess_issuer({"issuer": {"id": "did:key:z6Mkx", "name": "A College"}}, TRUST)
    assert (stranger.trusted, stranger.name, stranger.claimed_name) == (False, None, "A College")
    assert stranger.warning is not None
    assert stranger.warning.type == "urn:ler:problem:unknown-issuer"
    assert "not on this registry's list of trusted issuers" in stranger.warning.detail
    # Case, accents, spaces and punctuation do not hide a borrowed name.
    fake = assess_issuer({"issuer": {"id": "did:key:z6Mkx", "name": "workforce-RÉGISTRY"}}, TRUST)
    assert fake.warning is not None
    assert fake.warning.title == "Issuer pretends to be someone else"
    assert nobody_named(assess_issuer({"issuer": 42}, TRUST))


def nobody_named(trust: Any) -> bool:
    return trust.id is None and not trust.trusted and trust.warning.title == "Issuer unknown"


def test_a_verdict_keeps_authenticity_and_trust_apart() -> None:
    credential = signed(employment_credential())
    resolver = StaticDidResolver([build_document()])
    verdict = with_issuer_trust(verify_credential(credential, resolver, now=NOW), credential, TRUST)
    assert verdict.verified
    assert verdict.trusted
    data = verdict.to_dict()
    assert data["issuer"]["name"] == "Workforce Registry"
    assert data["trusted"] is True
    assert data["warnings"] == []
    untrusted = with_issuer_trust(
        verify_credential(credential, resolver, now=NOW), credential, TrustList([])
    )
    assert untrusted.verified
    assert not untrusted.trusted
    assert untrusted.to_dict()["warnings"][0]["title"] == "Issuer not known to this registry"
    # Without a trust list the kit's verdict is as before: no issuer entry.
    assert "issuer" not in verify_credential(credential, resolver, now=NOW).to_dict()


def build_document() -> dict[str, Any]:
    from ler.credentials import build_did_web_document

    return build_did_web_document(REGISTRY_DID, [registry_key()])


def test_a_signed_presentation_gets_the_trust_of_each_of_its_credentials() -> None:
    from ler.credentials import (
        SigningKey,
        build_presentation,
        did_key_from_public_key,
        sign_presentation,
        verify_presentation,
    )

    pending = SigningKey.generate("did:key:pending#key", "did:key:pending")
    did = did_key_from_public_key(pending.public_key)
    holder = SigningKey(f"{did}#{did.removeprefix('did:key:')}", did, pending.seed)
    ours = signed(employment_credential())
    theirs_doc = employment_credential(issuer=did)
    theirs_doc["id"] = "urn:uuid:3c7f2a5e-3c1d-4f7a-9d8e-1a2b3c4d5e6f"
    theirs = signed(theirs_doc, holder)
    presentation = sign_presentation(
        build_presentation([ours, theirs], holder=did), holder, challenge="c-1"
    )
    resolver = StaticDidResolver([build_document()])
    verdict = verify_presentation(presentation, resolver, now=NOW, challenge="c-1")
    assert verdict.verified
    trusted = with_issuer_trust(verdict, presentation, TRUST, [ours, theirs])
    assert [v.issuer.trusted for v in trusted.credentials if v.issuer] == [True, False]
    assert not trusted.trusted
    data = trusted.to_dict()
    assert data["trusted"] is False
    assert data["credentials"][1]["warnings"][0]["type"] == "urn:ler:problem:unknown-issuer"
