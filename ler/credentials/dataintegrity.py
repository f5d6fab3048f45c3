"""``DataIntegrityProof`` with the ``eddsa-rdfc-2022`` cryptosuite (W3C vc-di-eddsa).

Create: the proof configuration (proof options without ``proofValue``, given the document's
``@context``) and the document without ``proof`` are each canonicalized with RDFC-1.0; the data
signed is SHA-256(canonical proof configuration) followed by SHA-256(canonical document); the
Ed25519 signature becomes ``proofValue`` as multibase base58btc. Verify repeats the same steps.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ler.credentials.contexts import CREDENTIALS_V2
from ler.credentials.jsonld import OfflineDocumentLoader, canonize
from ler.credentials.multibase import MultibaseError, decode_base58btc, encode_base58btc
from ler.credentials.multikey import PublicKey, SigningKey

__all__ = [
    "CRYPTOSUITE",
    "PROOF_TYPE",
    "ProofError",
    "SigningInput",
    "add_proof",
    "create_proof",
    "format_datetime",
    "proof_configuration",
    "signing_input",
    "verify_proof",
]

PROOF_TYPE = "DataIntegrityProof"
CRYPTOSUITE = "eddsa-rdfc-2022"

_XSD_DATETIME = re.compile(
    r"^-?\d{4,}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?$", re.ASCII
)


class ProofError(ValueError):
    """A proof cannot be created or is malformed (not: a signature that does not verify)."""


def format_datetime(moment: datetime) -> str:
    """XML Schema dateTime in UTC with a ``Z`` and whole seconds, as proofs and VCs use."""
    if moment.tzinfo is None:
        raise ValueError("datetime must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class SigningInput:
    """The intermediate values of the cryptosuite, exposed so tests can compare them to vectors."""

    canonical_proof_config: str
    canonical_document: str

    @property
    def proof_config_hash(self) -> bytes:
        """SHA-256 of the canonical proof configuration."""
        return hashlib.sha256(self.canonical_proof_config.encode("utf-8")).digest()

    @property
    def document_hash(self) -> bytes:
        """SHA-256 of the canonical document."""
        return hashlib.sha256(self.canonical_document.encode("utf-8")).digest()

    @property
    def hash_data(self) -> bytes:
        """The 64 bytes that are signed: proof configuration hash then document hash."""
        return self.proof_config_hash + self.document_hash


def proof_configuration(
    document: Mapping[str, Any],
    proof_options: Mapping[str, Any],
) -> dict[str, Any]:
    """The proof configuration: proof options without ``proofValue``, with the doc's ``@context``.

    Raises :class:`ProofError` when the options are not an ``eddsa-rdfc-2022`` Data Integrity proof.
    """
    if proof_options.get("type") != PROOF_TYPE:
        raise ProofError(f"proof type must be {PROOF_TYPE!r}, not {proof_options.get('type')!r}")
    if proof_options.get("cryptosuite") != CRYPTOSUITE:
        raise ProofError(
            f"cryptosuite must be {CRYPTOSUITE!r}, not {proof_options.get('cryptosuite')!r}"
        )
    for field in ("created", "expires"):
        value = proof_options.get(field)
        if value is not None and (not isinstance(value, str) or not _XSD_DATETIME.match(value)):
            raise ProofError(f"proof {field!r} must be an XML Schema dateTime, not {value!r}")
    if "@context" not in document:
        raise ProofError("the document has no @context, so it cannot be canonicalized")
    config = {k: v for k, v in proof_options.items() if k not in ("proofValue", "@context")}
    config["@context"] = document["@context"]
    return config


_PROOF_CONFIG_KEYS = {
    "@context",
    "type",
    "cryptosuite",
    "created",
    "verificationMethod",
    "proofPurpose",
}
_ABSOLUTE_IRI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:[^\s<>\"{}|\\^`]+$")


def canonical_assertion_proof_config(config: Mapping[str, Any]) -> str | None:
    """The canonical N-Quads of the common proof configuration, without a JSON-LD processor.

    An ``eddsa-rdfc-2022`` assertion proof with exactly ``type``, ``cryptosuite``, ``created``,
    ``verificationMethod`` and ``proofPurpose`` under a VC 2.0 ``@context`` always canonicalizes to
    the same five statements about one blank node (the VC 2.0 context's terms are protected, so no
    later context can change them). Anything else returns None and goes through the full
    canonicalization; a unit test compares both on many configurations.
    """
    context = config.get("@context")
    first = context[0] if isinstance(context, list) and context else context
    created = config.get("created")
    method = config.get("verificationMethod")
    if (
        set(config) != _PROOF_CONFIG_KEYS
        or first != CREDENTIALS_V2
        or config.get("type") != PROOF_TYPE
        or config.get("cryptosuite") != CRYPTOSUITE
        or config.get("proofPurpose") != "assertionMethod"
        or not isinstance(created, str)
        or not _XSD_DATETIME.match(created)
        or not isinstance(method, str)
        or not _ABSOLUTE_IRI.match(method)
    ):
        return None
    node = "_:c14n0"
    return (
        f'{node} <http://purl.org/dc/terms/created> "{created}"'
        "^^<http://www.w3.org/2001/XMLSchema#dateTime> .\n"
        f"{node} <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> "
        "<https://w3id.org/security#DataIntegrityProof> .\n"
        f'{node} <https://w3id.org/security#cryptosuite> "{CRYPTOSUITE}"'
        "^^<https://w3id.org/security#cryptosuiteString> .\n"
        f"{node} <https://w3id.org/security#proofPurpose> "
        "<https://w3id.org/security#assertionMethod> .\n"
        f"{node} <https://w3id.org/security#verificationMethod> <{method}> .\n"
    )


def _unsecured(document: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in document.items() if k != "proof"}


def signing_input(
    document: Mapping[str, Any],
    proof_options: Mapping[str, Any],
    loader: OfflineDocumentLoader | None = None,
) -> SigningInput:
    """Canonicalize the proof configuration and the document (its ``proof`` left out)."""
    config = proof_configuration(document, proof_options)
    return SigningInput(
        canonical_proof_config=canonical_assertion_proof_config(config) or canonize(config, loader),
        canonical_document=canonize(_unsecured(document), loader),
    )


def create_proof(
    document: Mapping[str, Any],
    key: SigningKey,
    *,
    proof_purpose: str = "assertionMethod",
    created: datetime | str | None = None,
    challenge: str | None = None,
    domain: str | None = None,
    expires: datetime | str | None = None,
    loader: OfflineDocumentLoader | None = None,
) -> dict[str, Any]:
    """Sign ``document`` and return the ``proof`` object (the document itself is not changed).

    ``created`` defaults to now. ``challenge``, ``domain`` and ``expires`` are for presentations.
    """
    if created is None:
        created = datetime.now(UTC)
    options: dict[str, Any] = {
        "type": PROOF_TYPE,
        "cryptosuite": CRYPTOSUITE,
        "created": created if isinstance(created, str) else format_datetime(created),
        "verificationMethod": key.id,
        "proofPurpose": proof_purpose,
    }
    if expires is not None:
        options["expires"] = expires if isinstance(expires, str) else format_datetime(expires)
    if domain is not None:
        options["domain"] = domain
    if challenge is not None:
        options["challenge"] = challenge
    data = signing_input(document, options, loader)
    return {**options, "proofValue": encode_base58btc(key.sign(data.hash_data))}


def add_proof(
    document: Mapping[str, Any],
    key: SigningKey,
    **options: Any,
) -> dict[str, Any]:
    """A copy of ``document`` with a new ``eddsa-rdfc-2022`` proof (see :func:`create_proof`).

    Refuses a document that already has a proof; proof sets and chains are not supported.
    """
    if "proof" in document:
        raise ProofError("the document already has a proof")
    return {**document, "proof": create_proof(document, key, **options)}


def verify_proof(
    document: Mapping[str, Any],
    proof: Mapping[str, Any],
    public_key: PublicKey,
    loader: OfflineDocumentLoader | None = None,
) -> bool:
    """True when ``proof`` is a valid ``eddsa-rdfc-2022`` signature of ``document`` by the key.

    Raises :class:`ProofError` when the proof is malformed (wrong type, cryptosuite, encoding);
    canonicalization errors (unpinned context, undefined terms) propagate.
    """
    value = proof.get("proofValue")
    if not isinstance(value, str):
        raise ProofError("the proof has no proofValue")
    try:
        signature = decode_base58btc(value)
    except MultibaseError as exc:
        raise ProofError(f"proofValue is not multibase base58btc: {exc}") from None
    if len(signature) != 64:
        raise ProofError("proofValue is not a 64-byte Ed25519 signature")
    data = signing_input(document, proof, loader)
    return public_key.verify(signature, data.hash_data)
