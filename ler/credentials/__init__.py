"""Verifiable credentials for the platform kit: W3C VC Data Model 2.0 with Data Integrity
``eddsa-rdfc-2022`` proofs, pinned JSON-LD contexts, ``did:web``/``did:key`` keys, Bitstring
Status Lists, and a verifier that reports named checks. Pure library: no network, no I/O beyond
reading key files and the packaged contexts.
"""

from ler.credentials.dataintegrity import (
    CRYPTOSUITE,
    PROOF_TYPE,
    ProofError,
    add_proof,
    create_proof,
    signing_input,
    verify_proof,
)
from ler.credentials.did import (
    DidResolver,
    KeyResolutionError,
    KeyRing,
    StaticDidResolver,
    build_did_web_document,
    did_key_document,
    did_key_from_public_key,
    did_web_document_url,
    did_web_from_url,
    load_key_ring,
    resolve_verification_method,
)
from ler.credentials.jsonld import (
    CanonicalizationError,
    ContextNotPinnedError,
    OfflineDocumentLoader,
    TooComplexError,
    canonize,
    default_loader,
)
from ler.credentials.multikey import (
    KeyFileError,
    PublicKey,
    SigningKey,
    generate_key_file,
    load_key_file,
)
from ler.credentials.presentation import build_presentation, sign_presentation
from ler.credentials.statuslist import (
    MIN_BITS,
    StatusList,
    StatusListError,
    allocate_index,
    status_list_credential,
    status_list_entry,
)
from ler.credentials.trust import (
    IssuerTrust,
    TrustedIssuer,
    TrustList,
    assess_issuer,
    with_issuer_trust,
)
from ler.credentials.verify import (
    Check,
    Outcome,
    Problem,
    StaticStatusListFetcher,
    StatusListFetcher,
    Verdict,
    verify_credential,
    verify_presentation,
)

__all__ = [
    "CRYPTOSUITE",
    "MIN_BITS",
    "PROOF_TYPE",
    "CanonicalizationError",
    "Check",
    "ContextNotPinnedError",
    "DidResolver",
    "IssuerTrust",
    "KeyFileError",
    "KeyResolutionError",
    "KeyRing",
    "OfflineDocumentLoader",
    "Outcome",
    "Problem",
    "ProofError",
    "PublicKey",
    "SigningKey",
    "StaticDidResolver",
    "StaticStatusListFetcher",
    "StatusList",
    "StatusListError",
    "StatusListFetcher",
    "TooComplexError",
    "TrustList",
    "TrustedIssuer",
    "Verdict",
    "add_proof",
    "allocate_index",
    "assess_issuer",
    "build_did_web_document",
    "build_presentation",
    "canonize",
    "create_proof",
    "default_loader",
    "did_key_document",
    "did_key_from_public_key",
    "did_web_document_url",
    "did_web_from_url",
    "generate_key_file",
    "load_key_file",
    "load_key_ring",
    "resolve_verification_method",
    "sign_presentation",
    "signing_input",
    "status_list_credential",
    "status_list_entry",
    "verify_credential",
    "verify_presentation",
    "verify_proof",
    "with_issuer_trust",
]
