"""verify_credential / verify_presentation: named checks and readable problems."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import pytest

from ler.credentials import (
    Outcome,
    SigningKey,
    StaticDidResolver,
    StaticStatusListFetcher,
    StatusList,
    Verdict,
    add_proof,
    build_did_web_document,
    build_presentation,
    sign_presentation,
    status_list_credential,
    status_list_entry,
    verify_credential,
    verify_presentation,
)

from .vc_fixtures import (
    NOW,
    REGISTRY_DID,
    employment_credential,
    open_badge_credential,
    registry_key,
    signed,
)

pytestmark = pytest.mark.unit

STATUS_URL = "https://registry.example.org/v1/status-lists/1"


def _resolver(*key_numbers: int) -> StaticDidResolver:
    keys = [registry_key(n).public_key for n in key_numbers or (1,)]
    return StaticDidResolver([build_did_web_document(REGISTRY_DID, keys)])


def _status_setup(revoked: set[int], purpose: str = "revocation") -> StaticStatusListFetcher:
    status_list = StatusList()
    for index in revoked:
        status_list.set(index)
    list_credential = status_list_credential(STATUS_URL, REGISTRY_DID, status_list, purpose=purpose)
    return StaticStatusListFetcher([signed(list_credential)])


def _with_status(index: int, purpose: str = "revocation") -> dict[str, Any]:
    credential = employment_credential()
    credential["credentialStatus"] = status_list_entry(STATUS_URL, index, purpose)
    return signed(credential)


def _title(verdict: Verdict, check: str) -> str | None:
    problem = verdict.check(check).problem
    return None if problem is None else problem.title


def _outcomes(verdict: Any) -> dict[str, str]:
    return {check.name: str(check.outcome) for check in verdict.checks}


def test_platform_credential_passes_every_check() -> None:
    verdict = verify_credential(_with_status(5), _resolver(), _status_setup(revoked={6}), now=NOW)
    assert verdict.verified, verdict.to_dict()
    assert _outcomes(verdict) == {
        "structure": "passed",
        "issuer_key": "passed",
        "proof": "passed",
        "validity_period": "passed",
        "status": "passed",
    }
    assert verdict.problems == []


def test_open_badge_with_issuer_profile_object_verifies() -> None:
    verdict = verify_credential(signed(open_badge_credential()), _resolver(), now=NOW)
    assert verdict.verified, verdict.to_dict()


def test_one_changed_byte_in_the_subject_fails_with_a_readable_reason() -> None:
    credential = signed(employment_credential())
    credential["credentialSubject"]["role"] = "Lead Teachex"  # was "Lead Teacher"
    verdict = verify_credential(credential, _resolver(), now=NOW)
    assert not verdict.verified
    proof = verdict.check("proof")
    assert proof.outcome is Outcome.FAILED
    assert proof.problem is not None
    assert proof.problem.title == "Content changed after signing"
    assert "changed after it was signed" in proof.problem.detail
    assert proof.problem.type == "https://w3id.org/security#PROOF_VERIFICATION_ERROR"
    assert verdict.to_dict()["checks"][2]["problem"]["title"] == "Content changed after signing"


def test_credential_signed_with_a_retired_key_still_verifies_after_rotation() -> None:
    old_credential = signed(employment_credential(), registry_key(1))
    new_credential = signed(employment_credential(), registry_key(2))
    rotated = _resolver(1, 2)
    assert verify_credential(old_credential, rotated, now=NOW).verified
    assert verify_credential(new_credential, rotated, now=NOW).verified
    # a key withdrawn from the DID document (compromised) no longer vouches for anything
    withdrawn = verify_credential(old_credential, _resolver(2), now=NOW)
    assert not withdrawn.verified
    assert withdrawn.check("issuer_key").problem is not None
    assert withdrawn.check("proof").outcome is Outcome.SKIPPED


def test_did_key_issuer_needs_no_resolver() -> None:
    seed = bytes(range(32))
    multibase = SigningKey(id="x#x", controller="x", seed=seed).public_key.multibase
    did = f"did:key:{multibase}"
    key = SigningKey(id=f"{did}#{multibase}", controller=did, seed=seed)
    credential = add_proof(employment_credential(issuer=did), key)
    assert verify_credential(credential, None, now=NOW).verified


def test_signature_by_someone_other_than_the_issuer_fails() -> None:
    credential = signed(employment_credential(issuer="did:web:other.example"))
    verdict = verify_credential(credential, _resolver(), now=NOW)
    problem = verdict.check("issuer_key").problem
    assert problem is not None
    assert problem.title == "Signed by someone other than the issuer"


def test_unknown_issuer_fails_key_resolution() -> None:
    verdict = verify_credential(signed(employment_credential()), StaticDidResolver(), now=NOW)
    assert not verdict.verified
    problem = verdict.check("issuer_key").problem
    assert problem is not None
    assert "could not be found" in problem.detail


def test_revoked_credential_fails_status() -> None:
    verdict = verify_credential(_with_status(5), _resolver(), _status_setup({5}), now=NOW)
    assert not verdict.verified
    problem = verdict.check("status").problem
    assert problem is not None
    assert problem.title == "Revoked"
    assert "revoked" in problem.detail


def test_suspended_credential_fails_status() -> None:
    credential = _with_status(9, "suspension")
    verdict = verify_credential(
        credential, _resolver(), _status_setup({9}, purpose="suspension"), now=NOW
    )
    problem = verdict.check("status").problem
    assert problem is not None
    assert problem.title == "Suspended"


def test_status_problems() -> None:
    credential = _with_status(5)
    resolver = _resolver()
    skipped = verify_credential(credential, resolver, None, now=NOW)
    assert skipped.verified
    assert skipped.check("status").outcome is Outcome.SKIPPED
    missing = verify_credential(credential, resolver, StaticStatusListFetcher(), now=NOW)
    assert _title(missing, "status") == "Status list unavailable"
    mismatch = verify_credential(
        credential, resolver, _status_setup(set(), purpose="suspension"), now=NOW
    )
    assert _title(mismatch, "status") == "Status purpose mismatch"
    out_of_range = verify_credential(_with_status(200_000), resolver, _status_setup(set()), now=NOW)
    assert _title(out_of_range, "status") == "Status index out of range"


def test_forged_status_list_is_not_trusted() -> None:
    revoked = StatusList()
    revoked.set(5)
    forged = signed(status_list_credential(STATUS_URL, REGISTRY_DID, revoked))
    forged["credentialSubject"]["encodedList"] = StatusList().encode()  # "un-revoke" index 5
    verdict = verify_credential(
        _with_status(5), _resolver(), StaticStatusListFetcher([forged]), now=NOW
    )
    problem = verdict.check("status").problem
    assert problem is not None
    assert problem.title == "Status list not trustworthy"


def test_validity_period() -> None:
    credential = employment_credential()
    credential["validUntil"] = "2026-02-01T00:00:00Z"
    expired = verify_credential(signed(credential), _resolver(), now=NOW)
    problem = expired.check("validity_period").problem
    assert problem is not None
    assert problem.title == "Expired"
    assert "2026-02-01" in problem.detail
    early = verify_credential(
        signed(employment_credential()), _resolver(), now=NOW.replace(year=2025)
    )
    assert early.check("validity_period").problem is not None
    credential = employment_credential()
    credential["validFrom"] = "2026-13-45T00:00:00Z"
    malformed = verify_credential(credential, _resolver(), now=NOW)
    assert _title(malformed, "validity_period") == "Unreadable date"


@pytest.mark.parametrize(
    ("document", "title"),
    [
        ("not json object", "Not a JSON object"),
        (
            {"@context": ["https://example.org/ctx"], "type": ["VerifiableCredential"]},
            "Not a W3C verifiable document",
        ),
        (
            {"@context": ["https://www.w3.org/ns/credentials/v2"], "type": ["Thing"]},
            "Not a VerifiableCredential",
        ),
        (
            {
                "@context": ["https://www.w3.org/ns/credentials/v2"],
                "type": ["VerifiableCredential"],
                "credentialSubject": {},
            },
            "Issuer missing",
        ),
    ],
)
def test_malformed_documents_fail_structure_without_raising(document: Any, title: str) -> None:
    verdict = verify_credential(document, _resolver(), now=NOW)
    assert not verdict.verified
    problem = verdict.check("structure").problem
    assert problem is not None
    assert problem.title == title


def test_unsigned_credential_fails_proof() -> None:
    verdict = verify_credential(employment_credential(), _resolver(), now=NOW)
    problem = verdict.check("proof").problem
    assert problem is not None
    assert problem.title == "Not signed"


def test_unknown_context_fails_proof_readably() -> None:
    credential = signed(employment_credential())
    credential["@context"] = [*credential["@context"], "https://unknown.example/v1"]
    problem = verify_credential(credential, _resolver(), now=NOW).check("proof").problem
    assert problem is not None
    assert problem.title == "Unknown vocabulary"
    assert "https://unknown.example/v1" in problem.detail


def test_added_undefined_property_fails_proof_readably() -> None:
    credential = signed(employment_credential())
    credential["credentialSubject"]["bonus"] = "yes"
    problem = verify_credential(credential, _resolver(), now=NOW).check("proof").problem
    assert problem is not None
    assert "bonus" in problem.detail


def test_wrong_proof_purpose_fails() -> None:
    credential = add_proof(employment_credential(), registry_key(), proof_purpose="authentication")
    problem = verify_credential(credential, _resolver(), now=NOW).check("proof").problem
    assert problem is not None
    assert problem.title == "Signature made for another purpose"


# --- presentations ---------------------------------------------------------------------------


def _holder_key() -> SigningKey:
    return registry_key(1)


def _presentation(**kwargs: Any) -> dict[str, Any]:
    credentials = [signed(employment_credential()), signed(open_badge_credential())]
    presentation = build_presentation(credentials, holder=REGISTRY_DID, **kwargs)
    return presentation


def test_signed_presentation_with_challenge_and_domain_verifies() -> None:
    presentation = sign_presentation(
        _presentation(), _holder_key(), challenge="c-123", domain="https://employer.example"
    )
    verdict = verify_presentation(
        presentation, _resolver(), now=NOW, challenge="c-123", domain="https://employer.example"
    )
    assert verdict.verified, verdict.to_dict()
    assert len(verdict.credentials) == 2
    assert all(v.verified for v in verdict.credentials)
    assert verdict.to_dict()["credentials"][0]["kind"] == "credential"


def test_presentation_replay_and_audience_mismatch_fail() -> None:
    presentation = sign_presentation(
        _presentation(), _holder_key(), challenge="c-123", domain="https://employer.example"
    )
    verdict = verify_presentation(
        presentation, _resolver(), now=NOW, challenge="c-999", domain="https://other.example"
    )
    assert verdict.check("challenge").problem is not None
    assert _title(verdict, "domain") == "Meant for someone else"


def test_tampered_credential_inside_a_presentation_fails_with_its_reason() -> None:
    presentation = _presentation()
    presentation["verifiableCredential"][0]["credentialSubject"]["employer"] = "Sunny Dayz"
    verdict = verify_presentation(presentation, _resolver(), now=NOW)
    assert not verdict.verified
    problem = verdict.check("credentials").problem
    assert problem is not None
    assert "Content changed after signing" in problem.detail
    assert not verdict.credentials[0].verified
    assert verdict.credentials[1].verified


def test_tampered_signed_presentation_fails_its_own_proof() -> None:
    presentation = sign_presentation(_presentation(), _holder_key(), challenge="c")
    changed = copy.deepcopy(presentation)
    changed["verifiableCredential"].pop()
    verdict = verify_presentation(changed, _resolver(), now=NOW, challenge="c")
    assert verdict.check("proof").problem is not None


def test_expired_presentation_fails() -> None:
    presentation = _presentation(valid_until=NOW - timedelta(minutes=1))
    verdict = verify_presentation(presentation, _resolver(), now=NOW)
    problem = verdict.check("expiry").problem
    assert problem is not None
    assert problem.title == "Presentation expired"
    signed_vp = sign_presentation(_presentation(), _holder_key(), expires=NOW - timedelta(days=1))
    problem = verify_presentation(signed_vp, _resolver(), now=NOW).check("proof").problem
    assert problem is not None
    assert problem.title == "Signature expired"


def test_unsigned_presentation_is_allowed_only_when_nothing_is_asked_of_it() -> None:
    unsigned = _presentation()
    assert verify_presentation(unsigned, _resolver(), now=NOW).verified
    required = verify_presentation(unsigned, _resolver(), now=NOW, require_proof=True)
    assert not required.verified
    with_challenge = verify_presentation(unsigned, _resolver(), now=NOW, challenge="x")
    assert not with_challenge.verified


def test_presentation_signed_by_someone_other_than_the_holder_fails() -> None:
    presentation = _presentation()
    presentation["holder"] = "did:web:other.example"
    with pytest.raises(ValueError, match="holder"):
        sign_presentation(presentation, _holder_key())
    presentation = sign_presentation(_presentation(), _holder_key())
    presentation["holder"] = "did:web:other.example"
    verdict = verify_presentation(presentation, _resolver(), now=NOW)
    assert verdict.check("holder_key").problem is not None


def test_credential_is_not_a_presentation() -> None:
    verdict = verify_presentation(signed(employment_credential()), _resolver(), now=NOW)
    assert verdict.check("structure").problem is not None
    assert verdict.check("credentials").outcome is Outcome.SKIPPED


def test_status_list_signed_by_another_issuer_is_refused() -> None:
    seed = bytes(range(1, 33))
    multibase = SigningKey(id="x#x", controller="x", seed=seed).public_key.multibase
    did = f"did:key:{multibase}"
    stranger = SigningKey(id=f"{did}#{multibase}", controller=did, seed=seed)
    list_credential = status_list_credential(STATUS_URL, did, StatusList())
    fetcher = StaticStatusListFetcher([add_proof(list_credential, stranger)])
    verdict = verify_credential(_with_status(5), _resolver(), fetcher, now=NOW)
    assert _title(verdict, "status") == "Status list from someone else"


class _CountingResolver(StaticDidResolver):
    def __init__(self, documents: list[dict[str, Any]]) -> None:
        super().__init__(documents)
        self.calls = 0

    def resolve(self, did: str) -> Any:
        self.calls += 1
        return super().resolve(did)


def test_a_status_list_is_verified_once_per_resolver_while_fresh_and_bits_read_each_time() -> None:
    resolver = _CountingResolver(
        [build_did_web_document(REGISTRY_DID, [registry_key(1).public_key])]
    )
    fetcher = _status_setup(revoked={6})
    assert verify_credential(_with_status(5), resolver, fetcher, now=NOW).verified
    first = resolver.calls
    assert verify_credential(_with_status(5), resolver, fetcher, now=NOW).verified
    assert first == 2  # the credential's issuer and the status list's issuer
    assert resolver.calls == first + 1  # the list's issuer key was not looked up again
    revoked = verify_credential(_with_status(6), resolver, fetcher, now=NOW)
    assert _title(revoked, "status") == "Revoked"
    later = NOW + timedelta(seconds=31)
    verify_credential(_with_status(5), resolver, fetcher, now=later)
    assert resolver.calls == first + 2 + 2  # expired from the cache: the list verified again
